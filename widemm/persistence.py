"""A codec for fitted objects: weights in safetensors, everything else in JSON.

Nothing is pickled and loading runs no code from the files: JSON values are
decoded by a fixed set of tags, objects are rebuilt only from the classes the
caller allows (``classes``), with their saved parameters, and only the fitted
attributes each class declares are set on them. This module knows no estimator: the
estimators pass the classes they are made of.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Collection, Mapping
from inspect import signature
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator

from widemm.schema import ColumnSchema

if TYPE_CHECKING:
    from torch import nn

FORMAT_VERSION = 9  # 9: TreeScores.boost and lines_ (was text_lines_)
CONFIG_FILE, WEIGHTS_FILE = "widemm.json", "model.safetensors"
# "module.QualName" -> (class, its fitted attributes): all that is saved and loaded
Classes = Mapping[str, tuple[type, Collection[str]]]


def class_key(cls: type) -> str:
    """Return the name a class is saved under: ``module.QualName``."""
    return f"{cls.__module__}.{cls.__qualname__}"


def save(
    path: str | os.PathLike[str],
    obj: BaseEstimator,
    model: nn.Module,
    classes: Classes,
    unsaved: Collection[str] = (),
) -> None:
    """Write ``obj`` (JSON: its parameters and fitted state) and ``model``'s weights.

    The fitted state is every attribute ending in ``_`` but ``model_`` (the
    weights file holds that). Every object inside must be of ``classes``, and
    its fitted attributes among those declared there. ``obj``'s parameters
    named in ``unsaved`` are written as None.
    """
    from safetensors.torch import save_model

    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    estimator = _encode_object(obj, classes, {"model_"}, set(unsaved))
    # Both files are written beside, then renamed into place, weights first. The
    # JSON names the weights' digest: a save killed between the two renames
    # leaves the old JSON beside the new weights, which load refuses; there is
    # never a silent mix of two models.
    weights, config = path / f".{WEIGHTS_FILE}.tmp", path / f".{CONFIG_FILE}.tmp"
    save_model(model, str(weights))  # shared weights once
    text = json.dumps(
        {
            "format_version": FORMAT_VERSION,
            "weights_sha256": _sha256(weights),
            "estimator": estimator,
        },
        indent=1,
    )
    _write_synced(config, text.encode())
    _sync(weights)
    os.replace(weights, path / WEIGHTS_FILE)
    os.replace(config, path / CONFIG_FILE)
    _sync(path)


def load(path: str | os.PathLike[str], classes: Classes) -> Any:
    """Rebuild the object written by ``save``, without its model (``load_weights``).

    An unknown class, or an unknown key anywhere (a state key its class does
    not declare, which could shadow a method) raises a ValueError naming it.
    """
    path = Path(path)
    if not (path / CONFIG_FILE).is_file():
        raise FileNotFoundError(
            f"{path} holds no {CONFIG_FILE}: not a saved widemm model."
        )
    config = json.loads((path / CONFIG_FILE).read_text())
    version = config.get("format_version") if isinstance(config, dict) else None
    if version != FORMAT_VERSION:
        raise ValueError(
            f"{path / CONFIG_FILE} has format version {version}; this widemm reads "
            f"version {FORMAT_VERSION}."
        )
    keys = {"format_version", "weights_sha256", "estimator"}
    _check_keys(config, keys, str(path / CONFIG_FILE))
    if not (path / WEIGHTS_FILE).is_file():
        raise FileNotFoundError(f"{path} holds no {WEIGHTS_FILE}.")
    if _sha256(path / WEIGHTS_FILE) != config.get("weights_sha256"):
        raise ValueError(
            f"{path / WEIGHTS_FILE} is not the file {CONFIG_FILE} was saved with (its "
            "SHA-256 differs): the folder holds parts of two saves, or was altered. "
            "Save the model again."
        )
    return _decode(config["estimator"], classes)


def dumps(value: Any, classes: Classes) -> str:
    """Encode ``value`` (objects of ``classes``, arrays, frames...) as JSON text."""
    return json.dumps(
        {"format_version": FORMAT_VERSION, "value": _encode(value, classes)}, indent=1
    )


def loads(text: str, classes: Classes, where: str = "the JSON") -> Any:
    """Decode what ``dumps`` wrote, with the same checks as ``load``."""
    config = json.loads(text)
    version = config.get("format_version") if isinstance(config, dict) else None
    if version != FORMAT_VERSION:
        raise ValueError(
            f"{where} has format version {version}; this widemm reads version "
            f"{FORMAT_VERSION}."
        )
    _check_keys(config, {"format_version", "value"}, where)
    return _decode(config["value"], classes)


def _sha256(file: Path) -> str:
    with file.open("rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def _write_synced(file: Path, data: bytes) -> None:
    with file.open("wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def _sync(path: Path) -> None:
    """Flush a file's (or a folder's entries') writes to the disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def load_weights(model: nn.Module, path: str | os.PathLike[str]) -> None:
    """Set every weight of ``model`` from the folder written by ``save``."""
    from safetensors.torch import load_model

    file = Path(path) / WEIGHTS_FILE
    missing, unexpected = load_model(model, str(file), strict=False)
    if missing or unexpected:
        raise ValueError(
            f"{file} does not fit the model that {CONFIG_FILE} describes: missing "
            f"{sorted(missing)[:5]}, unexpected {sorted(unexpected)[:5]}."
        )


def _is_state_key(key: str) -> bool:
    """Fitted state: ``name_`` (scikit-learn's convention), never ``_private``."""
    return key.isidentifier() and key.endswith("_") and not key.startswith("_")


def _check_keys(entry: Mapping[str, Any], allowed: set[str], where: str) -> None:
    unknown = set(entry) - allowed
    if unknown:
        raise ValueError(
            f"{where} has unknown key(s) {sorted(unknown)}; expected {sorted(allowed)}."
        )


def _encode_object(
    obj: BaseEstimator,
    classes: Classes,
    skip: Collection[str] = (),
    unsaved: Collection[str] = (),
) -> dict[str, Any]:
    name = class_key(type(obj))
    if name not in classes:
        raise TypeError(f"Cannot save a {name}: only widemm's own classes are saved.")
    declared = set(classes[name][1])
    params = {
        k: None if k in unsaved else v for k, v in obj.get_params(deep=False).items()
    }
    if isinstance(params.get("checkpoint_dir"), os.PathLike):
        params["checkpoint_dir"] = str(params["checkpoint_dir"])
    state = {k: v for k, v in vars(obj).items() if _is_state_key(k) and k not in skip}
    if set(state) - declared:
        raise TypeError(
            f"{name} has fitted attributes {sorted(set(state) - declared)} that its "
            "saved form does not declare."
        )
    return {
        "__object__": name,
        "params": _encode(params, classes),
        "state": _encode(state, classes),
    }


def _encode(value: Any, classes: Classes) -> Any:
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray) and value.dtype.kind == "M":  # dates: int64
        return {"__ndarray__": value.view(np.int64).tolist(), "dtype": value.dtype.str}
    if isinstance(value, np.ndarray):
        return {
            "__ndarray__": value.tolist(),
            "dtype": value.dtype.str if value.dtype != object else "object",
        }
    if isinstance(value, pd.Index):
        return {
            "__index__": _encode(value.to_numpy(dtype=object), classes),
            "dtype": str(value.dtype),
        }
    if isinstance(value, pd.DataFrame):
        columns = {str(k): _column(v) for k, v in value.items()}
        return {"__frame__": _encode(columns, classes)}
    if isinstance(value, ColumnSchema):
        return {"__schema__": value.to_dict()}
    if isinstance(value, BaseEstimator):
        return _encode_object(value, classes)
    if isinstance(value, tuple):
        return {"__tuple__": [_encode(v, classes) for v in value]}
    if isinstance(value, list):
        return [_encode(v, classes) for v in value]
    if isinstance(value, dict) and all(isinstance(k, str) for k in value):
        return {"__dict__": {k: _encode(v, classes) for k, v in value.items()}}
    if isinstance(value, dict):  # keys of other types (class labels): pairs
        pairs = [[_encode(k, classes), _encode(v, classes)] for k, v in value.items()]
        return {"__items__": pairs}
    raise TypeError(
        f"Cannot save a value of type {type(value).__name__} ({value!r:.80}). "
        "Estimator parameters must be names, numbers or lists, not callables or "
        "modules."
    )


def _column(s: pd.Series) -> np.ndarray:
    """Return a frame's column as numpy; dates with a time zone as naive UTC."""
    if isinstance(s.dtype, pd.DatetimeTZDtype):
        s = s.dt.tz_convert("UTC").dt.tz_localize(None)
    return s.to_numpy()


def _decode(value: Any, classes: Classes) -> Any:
    if isinstance(value, list):
        return [_decode(v, classes) for v in value]
    if not isinstance(value, dict):
        return value
    if "__object__" in value:
        return _decode_object(value, classes)
    if "__ndarray__" in value:
        dtype = np.dtype(value["dtype"])
        if dtype.kind == "M":
            return np.array(value["__ndarray__"], dtype=np.int64).view(dtype)
        return np.array(value["__ndarray__"], dtype=dtype)
    if "__index__" in value:
        return pd.Index(_decode(value["__index__"], classes), dtype=value["dtype"])
    if "__frame__" in value:
        return pd.DataFrame(_decode(value["__frame__"], classes))
    if "__schema__" in value:
        return ColumnSchema.from_dict(value["__schema__"])
    if "__tuple__" in value:
        return tuple(_decode(v, classes) for v in value["__tuple__"])
    if "__dict__" in value:
        return {k: _decode(v, classes) for k, v in value["__dict__"].items()}
    if "__items__" in value:
        return {_decode(k, classes): _decode(v, classes) for k, v in value["__items__"]}
    raise ValueError(f"Unknown entry in saved model: {sorted(value)}")


def _decode_object(entry: dict[str, Any], classes: Classes) -> Any:
    name = entry["__object__"]
    _check_keys(entry, {"__object__", "params", "state"}, f"The entry of {name!r}")
    if name not in classes:
        raise ValueError(f"Refusing to load unknown class {name!r}.")
    cls, fitted = classes[name]
    params = _decode(entry["params"], classes)
    _check_keys(params, set(signature(cls).parameters), f"The parameters of {name}")
    state = _decode(entry["state"], classes)
    _check_keys(state, set(fitted), f"The fitted state of {name}")
    obj = cls(**params)
    for key, value in state.items():
        setattr(obj, key, value)
    return obj
