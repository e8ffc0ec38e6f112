"""Save and load fitted estimators: weights in safetensors, everything else in JSON.

Nothing is pickled and loading runs no code from the files: JSON values are
decoded by a fixed set of tags, and objects are rebuilt only from the classes
listed in ``_CLASSES``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator

from widemm.schema import ColumnSchema

FORMAT_VERSION = 1
CONFIG_FILE, WEIGHTS_FILE = "widemm.json", "model.safetensors"


def _classes() -> dict[str, type]:
    from sklearn.preprocessing import QuantileTransformer, StandardScaler

    from widemm.estimators import WideDeepClassifier, WideDeepRegressor
    from widemm.preprocessing import (
        ImagePreprocessor,
        TabPreprocessor,
        TextPreprocessor,
        WidePreprocessor,
    )

    classes = [
        WideDeepClassifier,
        WideDeepRegressor,
        ImagePreprocessor,
        TabPreprocessor,
        TextPreprocessor,
        WidePreprocessor,
        StandardScaler,
        QuantileTransformer,
    ]
    return {f"{c.__module__}.{c.__qualname__}": c for c in classes}


def save(estimator: BaseEstimator, path: str | Path) -> None:
    """Write a fitted estimator to the folder ``path`` (created if needed)."""
    from safetensors.torch import save_model

    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    state = {
        k: v for k, v in vars(estimator).items() if k.endswith("_") and k != "model_"
    }
    config = {
        "format_version": FORMAT_VERSION,
        "estimator": _encode_object(estimator, state),
    }
    (path / CONFIG_FILE).write_text(json.dumps(config, indent=1))
    save_model(estimator.model_, str(path / WEIGHTS_FILE))  # shared weights once


def load(path: str | Path) -> Any:
    """Load an estimator written by ``save``; it predicts exactly as before saving.

    Parameters
    ----------
    path : str or Path
        The folder given to ``save``.

    Returns
    -------
    WideDeepClassifier or WideDeepRegressor
    """
    from safetensors.torch import load_model

    path = Path(path)
    if not (path / CONFIG_FILE).is_file():
        raise FileNotFoundError(
            f"{path} holds no {CONFIG_FILE}: not a saved widemm model."
        )
    config = json.loads((path / CONFIG_FILE).read_text())
    if config.get("format_version") != FORMAT_VERSION:
        raise ValueError(
            f"{path / CONFIG_FILE} has format version {config.get('format_version')}; "
            f"this widemm reads version {FORMAT_VERSION}."
        )
    estimator = _decode(config["estimator"])
    estimator.model_ = estimator._build_model(pretrained=False)
    load_model(estimator.model_, str(path / WEIGHTS_FILE))
    estimator.model_.eval()
    return estimator


def _encode_object(obj: BaseEstimator, state: dict[str, Any]) -> dict[str, Any]:
    name = f"{type(obj).__module__}.{type(obj).__qualname__}"
    if name not in _classes():
        raise TypeError(f"Cannot save a {name}: only widemm's own classes are saved.")
    params = obj.get_params(deep=False)
    if params.get("callbacks"):  # training-time objects: not needed to predict
        params["callbacks"] = None
    if isinstance(params.get("checkpoint_dir"), os.PathLike):
        params["checkpoint_dir"] = str(params["checkpoint_dir"])
    return {
        "__object__": name,
        "params": _encode(params),
        "state": _encode(state),
    }


def _encode(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return {
            "__ndarray__": value.tolist(),
            "dtype": value.dtype.str if value.dtype != object else "object",
        }
    if isinstance(value, pd.Index):
        return {
            "__index__": _encode(value.to_numpy(dtype=object)),
            "dtype": str(value.dtype),
        }
    if isinstance(value, pd.DataFrame):
        return {"__frame__": _encode({str(k): v.to_numpy() for k, v in value.items()})}
    if isinstance(value, ColumnSchema):
        return {"__schema__": value.to_dict()}
    if isinstance(value, BaseEstimator):
        params = value.get_params(deep=False)
        return _encode_object(
            value, {k: v for k, v in vars(value).items() if k not in params}
        )
    if isinstance(value, tuple):
        return {"__tuple__": [_encode(v) for v in value]}
    if isinstance(value, list):
        return [_encode(v) for v in value]
    if isinstance(value, dict) and all(isinstance(k, str) for k in value):
        return {"__dict__": {k: _encode(v) for k, v in value.items()}}
    raise TypeError(
        f"Cannot save a value of type {type(value).__name__} ({value!r:.80}). "
        "Estimator "
        "parameters must be names, numbers or lists, not callables or modules."
    )


def _decode(value: Any) -> Any:
    if isinstance(value, list):
        return [_decode(v) for v in value]
    if not isinstance(value, dict):
        return value
    if "__object__" in value:
        cls = _classes().get(value["__object__"])
        if cls is None:
            raise ValueError(f"Refusing to load unknown class {value['__object__']!r}.")
        obj = cls(**_decode(value["params"]))
        for k, v in _decode(value["state"]).items():
            setattr(obj, k, v)
        return obj
    if "__ndarray__" in value:
        return np.array(value["__ndarray__"], dtype=np.dtype(value["dtype"]))
    if "__index__" in value:
        return pd.Index(_decode(value["__index__"]), dtype=value["dtype"])
    if "__frame__" in value:
        return pd.DataFrame(_decode(value["__frame__"]))
    if "__schema__" in value:
        return ColumnSchema.from_dict(value["__schema__"])
    if "__tuple__" in value:
        return tuple(_decode(v) for v in value["__tuple__"])
    if "__dict__" in value:
        return {k: _decode(v) for k, v in value["__dict__"].items()}
    raise ValueError(f"Unknown entry in saved model: {sorted(value)}")
