"""What a fit decides from its rows: trees or not, and which rows validate."""

import numpy as np
import pandas as pd
import pytest

from tests.conftest import DATA
from widemm import WideDeepClassifier, WideDeepRegressor


@pytest.fixture(scope="module")
def reviews():
    df = pd.read_parquet(DATA / "womens_clothing_reviews.parquet").sample(
        1200, random_state=0
    )
    y = df.pop("Recommended IND")
    return df.drop(columns=["Rating"]), y


def test_trees_auto_needs_rows_and_below_them_a_table_gets_a_line(adult_xy):
    X, y = adult_xy
    few = WideDeepClassifier(max_epochs=1, random_state=0).fit(X[:250], y[:250])
    line = few.pipeline_.preprocessors_["trees"]
    assert not line.boost
    assert line.boosters_ == [[]]
    assert few.model_.trees is not None  # its scores join the logits
    forced = WideDeepClassifier(max_epochs=1, random_state=0, trees=True)
    assert forced.fit(X[:250], y[:250]).pipeline_.preprocessors_["trees"].boost
    plain = WideDeepClassifier(max_epochs=1, random_state=0, trees=False)
    assert plain.fit(X[:250], y[:250]).model_.trees is None
    names = X[["workclass", "education"]][:250]  # no continuous input: no line
    assert "trees" not in few.fit(names, y[:250]).pipeline_.preprocessors_


def test_with_text_a_fit_keeps_trees_only_if_they_validate_better(reviews):
    X, y = reviews
    model = WideDeepClassifier(max_epochs=2, random_state=0).fit(X, y)
    start = model.start_
    assert {"valid_loss_with_trees", "valid_loss_without_trees"} <= set(start)
    better = min(start["valid_loss_with_trees"], start["valid_loss_without_trees"])
    assert start["valid_loss_fresh"] == better
    assert start["trees"] == (start["valid_loss_with_trees"] == better)
    assert (model.model_.trees is not None) == start["trees"]
    plain = WideDeepClassifier(max_epochs=2, random_state=0, trees=False).fit(X, y)
    assert "trees" not in plain.start_  # nothing to compare
    few = WideDeepClassifier(max_epochs=1, random_state=0).fit(X[:900], y[:900])
    assert few.model_.trees is None  # too few rows to choose on


def test_trees_over_text_alone_are_kept_without_a_choice(reviews):
    """Without tabular inputs the trees read the texts' lines: no second fit."""
    X, y = reviews
    model = WideDeepClassifier(max_epochs=1, random_state=0)
    model.fit(X[["Title", "Review Text"]], y)
    assert model.model_.trees is not None
    assert not model.pipeline_.preprocessors_["trees"].n_features_
    assert "valid_loss_without_trees" not in model.start_


def test_rows_in_time_order_validate_on_the_last(caplog):
    """A datetime index puts the rows in time order: the last rows validate."""
    from sklearn.datasets import load_diabetes

    X, y = load_diabetes(return_X_y=True, as_frame=True)
    X, y = X[:200], y[:200]
    days = pd.date_range("2024-01-01", periods=len(X), freq="D")

    def predict(X, **options):
        model = WideDeepRegressor(max_epochs=3, random_state=0, **options)
        return model.fit(X, y.set_axis(X.index)).predict(X[:20])

    with caplog.at_level("INFO", logger="widemm"):
        auto = predict(X.set_axis(days), verbose=1)
    assert "The rows are in time order (the index): the last validate." in caplog.text
    np.testing.assert_array_equal(auto, predict(X, time_ordered=True))
    shuffled = predict(X, time_ordered=False)
    assert np.abs(auto - shuffled).max() > 1e-3  # other rows held out
    np.testing.assert_array_equal(shuffled, predict(X))  # no order: random
    with pytest.raises(ValueError, match="time_ordered must be one of"):
        predict(X, time_ordered="last")


def test_with_an_eval_set_every_row_trains():
    """``validation_fraction`` is ignored with an ``eval_set``: no row is held out."""
    from sklearn.datasets import load_diabetes

    X, y = load_diabetes(return_X_y=True, as_frame=True)

    def predict(fraction):
        model = WideDeepRegressor(
            max_epochs=3, random_state=0, validation_fraction=fraction
        )
        return model.fit(X[:200], y[:200], eval_set=(X[200:], y[200:])).predict(X[:20])

    np.testing.assert_array_equal(predict(0.1), predict(0.3))
