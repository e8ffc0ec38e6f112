"""Input checks shared by preprocessors and estimators: clear errors, never garbage."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_array, column_or_1d, validate_data


def check_frame(estimator: BaseEstimator, X: Any, *, reset: bool) -> pd.DataFrame:
    """Return X as a DataFrame with the columns seen in fit, or raise a clear error.

    On ``reset`` the estimator records ``n_features_in_`` (and ``feature_names_in_``
    for string column names); otherwise X must have the same columns, in any
    order. Arrays and lists get the fitted names, or ``x0 .. xN``.
    """
    if isinstance(X, pd.DataFrame):
        if len(X) == 0 or X.shape[1] == 0:
            raise ValueError(f"X is empty: {X.shape[0]} rows and {X.shape[1]} columns.")
        names = getattr(estimator, "feature_names_in_", None)
        order = [] if names is None else list(names)
        moved = list(X.columns) != order and set(X.columns) == set(order)
        if not reset and order and moved:
            X = X[order]  # same columns in another order: fine
    elif X is None or isinstance(X, str | bytes):
        raise TypeError(f"X must be a DataFrame or 2-D array, got {type(X).__name__}.")
    else:
        X = check_array(X, dtype=None, ensure_all_finite=False)
        if np.iscomplexobj(X):
            raise ValueError("X holds complex numbers, which are not supported.")
    validate_data(estimator, X, reset=reset, skip_check_array=True)
    names = getattr(estimator, "feature_names_in_", None)
    if isinstance(X, pd.DataFrame) and names is not None:
        return X
    columns = names if names is not None else [f"x{i}" for i in range(X.shape[1])]
    return pd.DataFrame(np.asarray(X), columns=columns)


def check_target(y: Any, n_rows: int, *, numeric: bool) -> np.ndarray:
    """Return y as a 1-D array of length n_rows; NaN/inf targets are errors."""
    if y is None:
        raise ValueError(
            "This estimator requires y to be passed, but the target y is None."
        )
    y = column_or_1d(y, warn=True)
    if len(y) != n_rows:
        raise ValueError(f"X has {n_rows} rows but y has {len(y)}.")
    if numeric:
        try:
            y = y.astype(np.float64)
        except (TypeError, ValueError) as err:
            raise ValueError(f"y must be numeric for regression: {err}") from None
    if y.dtype.kind == "f":
        missing = ~np.isfinite(y)
    else:
        missing = pd.isna(y) if y.dtype == object else np.zeros(len(y), dtype=bool)
    if missing.any():
        row = int(np.flatnonzero(missing)[0])
        raise ValueError(
            f"y holds {int(missing.sum())} NaN/inf value(s), the first at row {row} "
            f"({y[row]!r}). Drop those rows or fill the target."
        )
    return y


def category_keys(s: pd.Series) -> np.ndarray:
    """Return a column as an object array of str keys, None where missing.

    Integral floats become ints first, so 3.0 at predict time matches 3 in fit.
    """
    missing = pd.isna(s.to_numpy())
    if pd.api.types.is_float_dtype(s.dtype):
        finite = s.to_numpy(dtype=np.float64, na_value=np.nan)[~missing]
        if np.array_equal(finite, np.round(finite)):
            s = s.astype("Int64")
    values = s.to_numpy(dtype=object)
    if not isinstance(s.dtype, pd.StringDtype):  # numbers, bools, mixed objects
        values = values.astype(str).astype(object)
    values[missing] = None
    return values


def positions(vocab: pd.Index, keys: np.ndarray) -> np.ndarray:
    """Return the position of each key in the unique ``vocab``, -1 where absent.

    ``get_indexer`` for many keys; a hash lookup per key for a few, which skips
    pandas' per-call overhead (single-row predictions).
    """
    if len(keys) > 16:
        return vocab.get_indexer(keys)
    return np.array([_position(vocab, k) for k in keys], dtype=np.int64)


def _position(vocab: pd.Index, key: Any) -> int:
    try:
        return int(vocab.get_loc(key))
    except (KeyError, TypeError):
        return -1


def numeric_values(s: pd.Series) -> np.ndarray:
    """Return a float64 column; NaN stays missing, unparseable values and inf raise."""
    values = pd.to_numeric(s, errors="coerce").to_numpy(
        dtype=np.float64, na_value=np.nan
    )
    bad = np.isnan(values) & s.notna().to_numpy()
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise ValueError(
            f"Column {s.name!r} is continuous but row {row} holds {s.iloc[row]!r}. "
            f"Fix it or pass cat_cols=[{s.name!r}]."
        )
    inf = np.isinf(values)
    if inf.any():
        row = int(np.flatnonzero(inf)[0])
        raise ValueError(
            f"Column {s.name!r} holds inf at row {row}. Replace it with NaN (treated "
            "as missing) or a finite value."
        )
    return values
