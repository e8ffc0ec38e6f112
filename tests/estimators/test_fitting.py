"""What a fit decides from its rows: trees or not, kept by validation."""

import pandas as pd
import pytest

from tests.conftest import DATA
from widemm import WideDeepClassifier


@pytest.fixture(scope="module")
def reviews():
    df = pd.read_parquet(DATA / "womens_clothing_reviews.parquet").sample(
        1200, random_state=0
    )
    y = df.pop("Recommended IND")
    return df.drop(columns=["Rating"]), y


def test_trees_auto_needs_rows(adult_xy):
    X, y = adult_xy
    few = WideDeepClassifier(max_epochs=1, random_state=0).fit(X[:250], y[:250])
    assert "trees" not in few.pipeline_.preprocessors_
    assert few.model_.trees is None
    forced = WideDeepClassifier(max_epochs=1, random_state=0, trees=True)
    assert "trees" in forced.fit(X[:250], y[:250]).pipeline_.preprocessors_


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
