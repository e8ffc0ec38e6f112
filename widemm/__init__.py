"""widemm: wide & deep learning on DataFrames of tabular, text and image columns.

The public names are imported on first use, so ``import widemm`` stays light
(torch loads when a model is first built).
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "WideDeepClassifier": "widemm.estimators",
    "WideDeepRegressor": "widemm.estimators",
    "WideDeepMultiTask": "widemm.estimators",
    "split_labels": "widemm.targets",
    "join_labels": "widemm.targets",
    "load": "widemm.loading",
    "FeaturePipeline": "widemm.pipeline",
    "infer_schema": "widemm.schema",
    "ColumnSchema": "widemm.schema",
    "TabPreprocessor": "widemm.preprocessing",
    "WidePreprocessor": "widemm.preprocessing",
    "TextPreprocessor": "widemm.preprocessing",
    "ImagePreprocessor": "widemm.preprocessing",
    "Trainer": "widemm.training",
    "TrainConfig": "widemm.training",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'widemm' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)


def __dir__() -> list[str]:
    return [*globals(), *__all__]
