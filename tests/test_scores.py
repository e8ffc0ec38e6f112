"""Scores under one naming, as scikit-learn computes them, for any magnitude."""

import numpy as np
import pytest
from sklearn import metrics

from widemm.scores import class_scores, label_set_scores, value_scores


def test_scores_equal_scikit_learns():
    rng = np.random.default_rng(0)
    codes = rng.integers(0, 3, 200)
    proba = rng.dirichlet(np.ones(3), 200)
    scores = class_scores(proba, codes)
    assert scores["log_loss"] == pytest.approx(metrics.log_loss(codes, proba))
    assert scores["roc_auc"] == pytest.approx(
        metrics.roc_auc_score(codes, proba, multi_class="ovr")
    )
    indicator = rng.integers(0, 2, (200, 4))
    p = rng.random((200, 4))
    multi = label_set_scores(p, indicator)
    assert multi["roc_auc_macro"] == pytest.approx(metrics.roc_auc_score(indicator, p))
    assert multi["roc_auc_micro"] == pytest.approx(
        metrics.roc_auc_score(indicator, p, average="micro")
    )
    truth = rng.normal(size=200)
    predicted = truth + rng.normal(size=200)
    values = value_scores(predicted, truth)
    assert values["r2"] == pytest.approx(metrics.r2_score(truth, predicted))
    assert values["rmse"] == pytest.approx(
        np.sqrt(metrics.mean_squared_error(truth, predicted))
    )


def test_huge_values_score_without_overflow():
    rng = np.random.default_rng(1)
    truth = rng.normal(size=50)
    predicted = truth + 0.1 * rng.normal(size=50)
    small, huge = (
        value_scores(predicted, truth),
        value_scores(predicted * 1e200, truth * 1e200),
    )
    assert huge["r2"] == pytest.approx(small["r2"])
    assert huge["rmse"] == pytest.approx(small["rmse"] * 1e200)


def test_scores_the_rows_cannot_give_are_left_out():
    assert "roc_auc" not in class_scores(np.array([[0.2, 0.8]] * 3), np.ones(3))
    assert "r2" not in value_scores(np.zeros(3), np.ones(3))
