"""Scikit-learn transformers that turn DataFrame columns into model inputs.

Imported on first use: the wide, tabular and text transformers need no torch
(``widemm.exported`` runs them without it); the image one does.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "ImageColumn": "widemm.preprocessing.image",
    "ImagePreprocessor": "widemm.preprocessing.image",
    "TabPreprocessor": "widemm.preprocessing.tabular",
    "TextPreprocessor": "widemm.preprocessing.text",
    "TextTokens": "widemm.preprocessing.text",
    "WidePreprocessor": "widemm.preprocessing.wide",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'widemm.preprocessing' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
