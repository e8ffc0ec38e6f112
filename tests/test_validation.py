"""Input checks: errors name the column, the row (by index label) or the shape."""

import numpy as np
import pandas as pd
import pytest
from sklearn.base import BaseEstimator

from widemm import infer_schema
from widemm.preprocessing import TabPreprocessor
from widemm.validation import check_frame, check_sample_weight


def test_frames_keep_their_dtypes_and_get_string_names():
    est = BaseEstimator()
    X = pd.DataFrame({0: [1.0, 2.0], 1: ["a", "b"]})
    out = check_frame(est, X, reset=True)
    assert list(out.columns) == ["0", "1"]
    assert out["1"].tolist() == ["a", "b"]
    assert out["0"].dtype == np.float64
    arrays = check_frame(BaseEstimator(), np.array([[1.0, 2.0]]), reset=True)
    assert list(arrays.columns) == ["x0", "x1"]


def test_durations_are_read_as_their_seconds():
    """A timedelta column is a number (a missing one was read as -9.2e18)."""
    hours = pd.to_timedelta([1.5, None, 48], unit="h")
    X = pd.DataFrame({"stay": hours, "n": [1, 2, 3]})
    out = check_frame(BaseEstimator(), X, reset=True)
    np.testing.assert_array_equal(out["stay"], [5400.0, np.nan, 172800.0])
    assert infer_schema(X).cont_cols == ("stay", "n")
    values = TabPreprocessor(cont_cols=["stay"], scaling=None).fit_transform(X)
    assert values.min() >= 0  # NaT is missing, not -9.2e18
    assert {5400.0, 172800.0} <= set(values.ravel())


def test_later_frames_must_have_the_fit_columns_in_any_order():
    est = BaseEstimator()
    check_frame(est, pd.DataFrame({"a": [1], "b": [2]}), reset=True)
    swapped = check_frame(est, pd.DataFrame({"b": [2], "a": [1]}), reset=False)
    assert list(swapped.columns) == ["a", "b"]
    with pytest.raises(ValueError, match="b"):
        check_frame(est, pd.DataFrame({"a": [1]}), reset=False)
    filled = check_frame(est, pd.DataFrame({"a": [1]}), reset=False, optional=["b"])
    assert filled["b"].isna().all()
    with pytest.raises(ValueError, match="empty"):
        check_frame(est, pd.DataFrame({"a": []}), reset=False)


def test_sample_weights_are_checked_naming_the_row():
    X = pd.DataFrame({"a": range(3)}, index=["r1", "r2", "r3"])
    assert check_sample_weight([1, 0, 2], X).dtype == np.float32
    with pytest.raises(ValueError, match="row 'r2' has -1"):
        check_sample_weight([1, -1, 2], X)
    with pytest.raises(ValueError, match=r"must have shape \(3,\)"):
        check_sample_weight([1, 2], X)
    with pytest.raises(ValueError, match="zero for every row"):
        check_sample_weight([0, 0, 0], X)
