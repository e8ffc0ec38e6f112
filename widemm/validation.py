"""Input checks shared by preprocessors and estimators: clear errors, never garbage."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_array, validate_data


def check_frame(
    estimator: BaseEstimator,
    X: Any,
    *,
    reset: bool,
    optional: Collection[str] = (),
) -> pd.DataFrame:
    """Return X as a DataFrame with the columns seen in fit, or raise a clear error.

    On ``reset`` the estimator records ``n_features_in_`` and ``feature_names_in_``.
    Column names are made strings (``read_csv(header=None)`` gives 0, 1, ...), so
    each column keeps its dtype whatever its name. Otherwise X must have the fit
    columns, in any order, but for ``optional`` ones (the model ignores them),
    which may be left out. Arrays and lists get the fitted names, or ``x0 .. xN``;
    object arrays get a dtype per column. Durations (timedelta64) become their
    seconds (NaT: NaN), numbers like any other.
    """
    if isinstance(X, pd.DataFrame):
        if len(X) == 0 or X.shape[1] == 0:
            raise ValueError(f"X is empty: {X.shape[0]} rows and {X.shape[1]} columns.")
        X = _seconds(_string_names(X))
        names = getattr(estimator, "feature_names_in_", None)
        if not reset and names is not None:
            absent = [c for c in names if c in optional and c not in X.columns]
            if absent:
                X = X.assign(**dict.fromkeys(absent, np.nan))
            if list(X.columns) != list(names) and set(X.columns) == set(names):
                X = X[list(names)]  # same columns in another order: fine
    elif X is None or isinstance(X, str | bytes):
        raise TypeError(f"X must be a DataFrame or 2-D array, got {type(X).__name__}.")
    else:
        X = check_array(X, dtype=None, ensure_all_finite=False)
        if np.iscomplexobj(X):
            raise ValueError("X holds complex numbers, which are not supported.")
    validate_data(estimator, X, reset=reset, skip_check_array=True)
    names = getattr(estimator, "feature_names_in_", None)
    columns = list(names) if names is not None else [f"x{i}" for i in range(X.shape[1])]
    if isinstance(X, pd.DataFrame):
        return X if names is not None else X.set_axis(columns, axis=1)
    frame = pd.DataFrame(X, columns=columns)
    return frame.infer_objects() if X.dtype == object else frame


def _string_names(X: pd.DataFrame) -> pd.DataFrame:
    """X with ``str`` column names; duplicated names are an error."""
    names = [str(c) for c in X.columns]
    duplicated = sorted({c for c in names if names.count(c) > 1})
    if duplicated:
        raise ValueError(
            f"X has duplicated column names: {duplicated}. Rename or drop them."
        )
    if all(isinstance(c, str) for c in X.columns):
        return X
    return X.set_axis(names, axis=1)


def _seconds(X: pd.DataFrame) -> pd.DataFrame:
    """X with its duration columns as their seconds (float64, NaT -> NaN)."""
    durations = {
        c: X[c].dt.total_seconds()
        for c in X.columns
        if pd.api.types.is_timedelta64_dtype(X[c].dtype)
    }
    return X.assign(**durations) if durations else X


def plain(label: Any) -> str:
    """Return the repr of a value as users wrote it: ``105``, not ``np.int64(105)``."""
    return repr(label.item() if isinstance(label, np.generic) else label)


def check_target(y: Any, X: pd.DataFrame) -> pd.Series | pd.DataFrame:
    """Return y as a Series (one target) or DataFrame (several), indexed like X.

    A one-column 2-D y is one target. Values are checked by the targets
    (``widemm.targets``), which name the row of a bad value by X's labels.
    """
    if y is None:
        raise ValueError(
            "This estimator requires y to be passed, but the target y is None."
        )
    if not isinstance(y, pd.Series | pd.DataFrame):
        values = np.asarray(y)
        if values.ndim not in (1, 2):
            raise ValueError(f"y must be 1-D or 2-D, got shape {values.shape}.")
        y = pd.DataFrame(values) if values.ndim == 2 else pd.Series(values)
    if len(y) != len(X):
        raise ValueError(f"X has {len(X)} rows but y has {len(y)}.")
    if isinstance(y, pd.DataFrame) and y.shape[1] == 1:
        y = y.iloc[:, 0]
    return y.set_axis(X.index, axis=0)


def check_sample_weight(sample_weight: Any, X: pd.DataFrame) -> np.ndarray | None:
    """Return sample weights as float32 (n_rows,): finite, >= 0, not all 0."""
    if sample_weight is None:
        return None
    weight = np.asarray(sample_weight)
    if weight.ndim != 1 or len(weight) != len(X):
        raise ValueError(
            f"sample_weight has shape {weight.shape}; X has {len(X)} rows, so it "
            f"must have shape ({len(X)},)."
        )
    try:
        weight = weight.astype(np.float64)
    except (TypeError, ValueError) as err:
        raise ValueError(f"sample_weight must be numeric: {err}") from None
    bad = ~np.isfinite(weight) | (weight < 0)
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise ValueError(
            f"sample_weight must be finite and >= 0; row {plain(X.index[row])} has "
            f"{weight[row]}."
        )
    if not weight.any():
        raise ValueError("sample_weight is zero for every row: nothing to train on.")
    return weight.astype(np.float32)


def category_keys(s: pd.Series) -> np.ndarray:
    """Return a column as an object array of str keys, None where missing.

    Integral floats become ints first, so 3.0 at predict time matches 3 in fit
    (those that a float holds exactly: below 2**53 in size).
    """
    missing = pd.isna(s.to_numpy())
    if pd.api.types.is_float_dtype(s.dtype):
        finite = s.to_numpy(dtype=np.float64, na_value=np.nan)[~missing]
        exact = np.abs(finite) < 2.0**53
        if np.array_equal(finite, np.round(finite)) and exact.all():
            s = s.astype("Int64")
    values = s.to_numpy(dtype=object)
    if not isinstance(s.dtype, pd.StringDtype):  # numbers, bools, mixed objects
        values = values.astype(str).astype(object)
    values[missing] = None
    return values


def keys_of(X: pd.DataFrame, col: str, memo: dict[str, np.ndarray] | None) -> Any:
    """``category_keys(X[col])``, computed once per frame when ``memo`` is shared.

    The wide and tabular preprocessors read the same categorical columns: given
    one dict, a frame's keys are made once (a tenth of a one-row prediction).
    """
    if memo is None:
        return category_keys(X[col])
    if col not in memo:
        memo[col] = category_keys(X[col])
    return memo[col]


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
    unread = np.isnan(values) & s.notna().to_numpy()
    if pd.api.types.is_bool_dtype(s):  # a boolean is a category, not 0 or 1
        unread[:] = True
    elif s.dtype == object:
        unread |= s.map(lambda v: isinstance(v, bool | np.bool_)).to_numpy(bool)
    bad = first_row(s, unread)
    if bad is not None:
        raise ValueError(
            f"Column {s.name!r} is continuous but row {bad[0]} holds {bad[1]!r}. "
            f"Fix it (cast booleans with .astype(int)) or pass cat_cols=[{s.name!r}]."
        )
    inf = first_row(s, np.isinf(values))
    if inf is not None:
        raise ValueError(
            f"Column {s.name!r} holds inf at row {inf[0]}. Replace it with NaN "
            "(treated as missing) or a finite value."
        )
    return values


def first_row(s: pd.Series, mask: np.ndarray) -> tuple[str, Any] | None:
    """Return the first row where ``mask`` holds: its label (as written) and value."""
    if not mask.any():
        return None
    row = int(np.flatnonzero(mask)[0])
    value = s.iloc[row]
    return plain(s.index[row]), value.item() if isinstance(value, np.generic) else value
