"""TreeScores: LightGBM per target column, cross-fitted, laid out as the outputs."""

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from widemm.preprocessing.trees import TreeScores


@pytest.fixture(scope="module")
def table():
    rng = np.random.default_rng(0)
    cat = rng.integers(0, 5, (600, 2))
    cont = rng.normal(size=(600, 3)).astype(np.float32)
    return cat, cont, rng


def test_training_rows_get_the_scores_of_trees_that_did_not_see_them(table):
    cat, cont, rng = table
    noise = rng.integers(0, 2, len(cat)).astype(np.float32)[:, None]  # unlearnable
    trees = TreeScores([("binary", 1, 2, 1)], random_state=0).fit(cat, cont, noise)
    in_sample = roc_auc_score(noise[:, 0], trees.transform(cat, cont)[:, 0])
    held_out = roc_auc_score(noise[:, 0], trees.out_of_fold[:, 0])
    assert in_sample > 0.6  # the fold models have seen 4 rows in 5
    assert abs(held_out - 0.5) < 0.08
    assert len(trees.boosters_[0]) == 5


def test_scores_are_laid_out_as_the_models_outputs(table):
    cat, cont, _ = table
    signal = cont[:, 0] + (cat[:, 0] == 3)
    y = np.column_stack(
        [
            np.digitize(signal, [-0.5, 0.5]),  # 3 classes
            signal > 0,  # two labels
            signal > 1,
            signal,  # a regression column, 3 quantiles each
        ]
    ).astype(np.float32)
    y[::7, 3] = np.nan  # unknown for some rows
    layout = [
        ("multiclass", 1, 3, 1),
        ("multilabel", 2, 0, 1),
        ("regression", 1, 0, 3),
    ]
    trees = TreeScores(layout, random_state=0).fit(cat, cont, y)
    scores = trees.transform(cat, cont)
    assert scores.shape == (len(cat), 3 + 2 + 3) == trees.out_of_fold.shape
    assert (scores[:, 5] == scores[:, 7]).all()  # a column's score, per quantile
    assert np.corrcoef(trees.out_of_fold[:, 5], signal)[0, 1] > 0.9
    assert (trees.out_of_fold[:, :3].argmax(1) == y[:, 0]).mean() > 0.8
    contributions = trees.contributions(cat[:10], cont[:10], 5)
    expected = trees.transform(cat[:10], cont[:10])[:, 5]
    bias = expected - contributions.sum(1)
    np.testing.assert_allclose(bias, bias[0], rtol=1e-5)  # TreeSHAP adds up


def test_a_column_of_one_class_scores_zero_and_weights_count(table):
    cat, cont, _ = table
    one_class = np.ones((len(cat), 1), dtype=np.float32)
    trees = TreeScores([("binary", 1, 2, 1)]).fit(cat, cont, one_class)
    assert trees.boosters_ == [[]]
    assert not trees.transform(cat, cont).any()
    y = (cont[:, :1] > 0).astype(np.float32)
    weight = np.where(cont[:, 1] > 0, 5.0, 1.0)
    plain = TreeScores([("binary", 1, 2, 1)]).fit(cat, cont, y)
    weighted = TreeScores([("binary", 1, 2, 1)]).fit(cat, cont, y, weight)
    assert plain.boosters_ != weighted.boosters_
