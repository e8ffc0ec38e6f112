"""Input checks shared by preprocessors and estimators: clear errors, never garbage."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_array, validate_data


def check_frame(estimator: BaseEstimator, X: Any, *, reset: bool) -> pd.DataFrame:
    """Return X as a DataFrame with the columns seen in fit, or raise a clear error.

    Arrays and lists become DataFrames with columns ``x0 .. xN``. On ``reset`` the
    estimator records ``n_features_in_`` (and ``feature_names_in_`` for string
    column names); otherwise the columns must match those, in any order.
    """
    if not isinstance(X, pd.DataFrame):
        if X is None or isinstance(X, str | bytes):
            raise TypeError(f"X must be a DataFrame or 2-D array, got {type(X).__name__}.")
        array = check_array(X, dtype=None, ensure_all_finite=False, ensure_min_samples=1)
        if np.iscomplexobj(array):
            raise ValueError("X holds complex numbers, which are not supported.")
        X = pd.DataFrame(array, columns=[f"x{i}" for i in range(array.shape[1])])
    elif len(X) == 0 or X.shape[1] == 0:
        raise ValueError(f"X is empty: {X.shape[0]} rows and {X.shape[1]} columns.")
    if not reset:
        X = _match_columns(estimator, X)
    validate_data(estimator, X, reset=reset, skip_check_array=True)
    if not hasattr(estimator, "feature_names_in_"):  # fitted on an array
        X = X.set_axis([f"x{i}" for i in range(X.shape[1])], axis=1)
    return X


def _match_columns(estimator: BaseEstimator, X: pd.DataFrame) -> pd.DataFrame:
    names = getattr(estimator, "feature_names_in_", None)
    if names is None or not all(isinstance(c, str) for c in X.columns):
        return X
    missing = [c for c in names if c not in X.columns]
    if missing:
        raise ValueError(f"X is missing column(s) {missing} that were present in fit.")
    new = [c for c in X.columns if c not in set(names)]
    if new:
        raise ValueError(
            f"X has column(s) {new} that were not present in fit. Drop them, or refit "
            "with them."
        )
    return X[list(names)]


def check_target(y: Any, n_rows: int, *, numeric: bool) -> np.ndarray:
    """Return y as a 1-D array of length n_rows; NaN/inf targets are errors."""
    if y is None:
        raise ValueError("y is None: this estimator requires y to fit.")
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] == 1:
        import warnings

        from sklearn.exceptions import DataConversionWarning

        warnings.warn(
            "A column-vector y was passed when a 1-D array was expected; raveling it.",
            DataConversionWarning,
            stacklevel=3,
        )
        y = y.ravel()
    if y.ndim != 1:
        raise ValueError(f"y must be 1-D, got shape {y.shape}.")
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


def category_keys(s: pd.Series) -> pd.Series:
    """Map a column to string keys for lookups; missing values stay missing (NA).

    Integral floats become ints first, so 3.0 at predict time matches 3 in fit.
    """
    if pd.api.types.is_float_dtype(s):
        values = s.to_numpy(dtype=np.float64, na_value=np.nan)
        finite = values[np.isfinite(values)]
        if np.array_equal(finite, np.round(finite)):
            s = s.astype("Int64")
    return s.astype("string")


def numeric_values(s: pd.Series) -> np.ndarray:
    """Return a float64 column; NaN stays missing, unparseable values and inf raise."""
    values = pd.to_numeric(s, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
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
