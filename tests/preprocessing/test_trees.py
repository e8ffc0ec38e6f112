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
    beyond = cont[:10] + np.arange(10)[:, None]  # some beyond the fit range
    for rows in (cont[:10], beyond):
        contributions = trees.contributions(cat[:10], rows, 5)
        expected = trees.transform(cat[:10], rows)[:, 5]
        bias = expected - contributions.sum(1)
        np.testing.assert_allclose(bias, bias[0], rtol=1e-5)  # TreeSHAP adds up


def test_a_target_columns_trees_do_not_depend_on_the_columns_beside_it(table):
    """A multi-task model's trees for a column are a model of that column alone's."""
    cat, cont, rng = table
    signal = cont[:, 0] + (cat[:, 0] == 3) + rng.normal(0, 0.5, len(cat))
    y = np.column_stack([signal > 0, signal > 1]).astype(np.float32)
    both = TreeScores([("multilabel", 2, 0, 1)], random_state=3).fit(cat, cont, y)
    alone = TreeScores([("binary", 1, 2, 1)], random_state=3).fit(cat, cont, y[:, 1:])
    np.testing.assert_array_equal(both.out_of_fold[:, 1], alone.out_of_fold[:, 0])
    assert both.boosters_[1] == alone.boosters_[0]


def test_every_lightgbm_call_of_the_folds_sets_one_thread_count(table, monkeypatch):
    """LightGBM's thread count is one per process, set by each call given
    parameters: folds trained side by side must not reset it under each other
    (a subset cut with all cores while a model sized its buffers for one
    crashed the process)."""
    import lightgbm as lgb

    cat, cont, rng = table
    counts = []
    subset, train = lgb.Dataset.subset, lgb.train

    def recorded_subset(self, used_indices, params=None):
        counts.append(("subset", (params or self.params).get("num_threads")))
        return subset(self, used_indices, params)

    def recorded_train(params, *args, **kwargs):
        counts.append(("train", params.get("num_threads")))
        return train(params, *args, **kwargs)

    monkeypatch.setattr(lgb.Dataset, "subset", recorded_subset)
    monkeypatch.setattr(lgb, "train", recorded_train)
    y = rng.integers(0, 2, (len(cat), 1)).astype(np.float32)
    TreeScores([("binary", 1, 2, 1)], random_state=0).fit(cat, cont, y)
    assert len(counts) == 15  # 5 folds: two subsets and a model each
    assert {n for _, n in counts} == {counts[-1][1]}
    assert counts[-1][1] >= 1


def test_a_regression_score_follows_its_line_beyond_the_fit_range(table):
    cat, cont, rng = table
    y = (2 * cont[:, :1] + rng.normal(0, 0.1, (len(cont), 1))).astype(np.float32)
    trees = TreeScores([("regression", 1, 0, 1)], random_state=0).fit(cat, cont, y)
    np.testing.assert_allclose(trees.linear_[0], [2, 0, 0], atol=0.05)
    top = cont[:, 0].max()
    edge, far = cont[:50].copy(), cont[:50].copy()
    edge[:, 0], far[:, 0] = top, top + 1.5
    gain = trees.transform(cat[:50], far) - trees.transform(cat[:50], edge)
    np.testing.assert_allclose(gain, 2 * 1.5, rtol=0.05)  # trees alone: 0
    inside = trees.transform(cat, cont)
    trees.linear_[0] = []
    np.testing.assert_array_equal(trees.transform(cat, cont), inside)


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


def test_text_columns_reach_the_trees_through_cross_fitted_linear_scores(table):
    import pandas as pd

    cat, cont, rng = table
    good = ["great fit", "love it", "perfect", "so soft"]
    bad = ["runs small", "returned it", "cheap fabric", "fell apart"]
    y = rng.integers(0, 2, len(cat)).astype(np.float32)
    words = [rng.choice(good if v else bad) + " " + rng.choice(good + bad) for v in y]
    texts = pd.DataFrame({"review": words, "title": ["a title"] * len(cat)})
    layout = [("binary", 1, 2, 1)]
    plain = TreeScores(layout, random_state=0).fit(cat, cont, y[:, None])
    read = TreeScores(layout, random_state=0, text_cols=("review", "title"))
    read.fit(cat, cont, y[:, None], texts=texts)
    assert roc_auc_score(y, plain.out_of_fold[:, 0]) < 0.6  # the table knows nothing
    assert roc_auc_score(y, read.out_of_fold[:, 0]) > 0.95  # out of fold
    contributions = read.contributions(cat[:20], cont[:20], 0, texts[:20])
    assert contributions.shape == (20, read.n_features_ + 2)
    bias = read.transform(cat[:20], cont[:20], texts[:20])[:, 0] - contributions.sum(1)
    np.testing.assert_allclose(bias, bias[0], rtol=1e-5)  # TreeSHAP adds up
    by_column = np.abs(contributions).mean(0)
    assert by_column[-2] > 10 * by_column[: read.n_features_].max()  # the review
    with pytest.raises(ValueError, match="text columns"):
        read.transform(cat, cont)


@pytest.mark.parametrize(("n_cont", "fraction"), [(6, "1"), (8, "0.5")])
def test_each_tree_sees_half_the_inputs_from_ten(table, n_cont, fraction):
    """feature_fraction="auto": 0.5 from 10 inputs (2 categorical + 8 numeric
    here), else every input (California's 8 lose 0.003 R² with half)."""
    cat, _, rng = table
    cont = rng.normal(size=(len(cat), n_cont)).astype(np.float32)
    y = (cont[:, :1] > 0).astype(np.float32)
    trees = TreeScores([("binary", 1, 2, 1)], random_state=0).fit(cat, cont, y)
    assert f"[feature_fraction: {fraction}]" in trees.boosters_[0][0]


@pytest.mark.parametrize(("n_cont", "extra"), [(10, "0"), (11, "1")])
def test_split_thresholds_are_random_below_fifty_rows_per_input(table, n_cont, extra):
    """extra_trees="auto": 600 rows of 12 inputs are 50 per input (best
    thresholds); of 13, 46 (random ones: digits 0.9811 against 0.9766)."""
    cat, _, rng = table
    cont = rng.normal(size=(len(cat), n_cont)).astype(np.float32)
    y = (cont[:, :1] > 0).astype(np.float32)
    trees = TreeScores([("binary", 1, 2, 1)], random_state=0).fit(cat, cont, y)
    assert f"[extra_trees: {extra}]" in trees.boosters_[0][0]


def test_without_boosting_a_cross_fitted_line_of_the_continuous_inputs_passes(table):
    cat, cont, rng = table
    value = 2 * cont[:, 0] - cont[:, 1]
    y = np.column_stack([value + rng.normal(0, 0.1, len(cont)), value > 0])
    layout = [("regression", 1, 0, 1), ("binary", 1, 2, 1)]
    line = TreeScores(layout, random_state=0, boost=False).fit(cat, cont, y)
    assert line.boosters_ == [[], []]
    (coef, intercept), (label_coef, _) = (lines[0] for lines in line.lines_)
    np.testing.assert_allclose(coef[0], [2, -1, 0], atol=0.05)
    assert label_coef[0, 0] > 1
    assert label_coef[0, 2] < label_coef[0, 0] / 10
    scores = line.transform(cat, cont)
    np.testing.assert_allclose(scores[:, 0], cont @ coef[0] + intercept[0], rtol=1e-5)
    assert np.corrcoef(line.out_of_fold[:, 0], y[:, 0])[0, 1] > 0.99
    assert not np.allclose(line.out_of_fold[:, 0], scores[:, 0])  # out of fold
    assert roc_auc_score(y[:, 1], line.out_of_fold[:, 1]) > 0.95
    for output in (0, 1):
        contributions = line.contributions(cat[:20], cont[:20], output)
        assert contributions.shape == (20, line.n_features_)
        assert not contributions[:, : line.n_cat_].any()  # the line reads no codes
        bias = scores[:20, output] - contributions.sum(1)
        np.testing.assert_allclose(bias, bias[0], rtol=1e-5, atol=1e-5)


def test_rows_in_time_order_cross_fit_on_runs_of_rows_and_stop_on_the_latest():
    """Random folds let a row's neighbours in time vouch for it; runs do not."""
    rng = np.random.default_rng(0)
    walk = rng.normal(size=1020).cumsum()
    y = (walk[20:] - walk[:-20])[:, None]  # the next 20 steps: unforeseeable
    clock = np.arange(1000, dtype=np.float32)[:, None]  # tells the time
    cat = np.zeros((1000, 0), dtype=np.int64)
    r2 = {}
    for ordered in (False, True):
        trees = TreeScores([("regression", 1, 0, 1)], ordered=ordered, random_state=0)
        trees.fit(cat, clock, y)
        residual = y[:, 0] - trees.out_of_fold[:, 0]
        r2[ordered] = 1 - residual.var() / y.var()
    assert r2[False] > 0.5  # the neighbours' targets, read off the clock
    assert r2[True] < 0.1  # the truth: nothing to foresee (measured 0.83, -0.25)
