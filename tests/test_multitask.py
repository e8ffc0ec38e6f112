"""Several targets in one model: objective, multilabel, multi-target, mixed tasks,
sample and class weights, calibration and quantiles, on real data."""

import json

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.metrics import r2_score, recall_score, roc_auc_score
from sklearn.model_selection import train_test_split
from torch.nn import functional as F

import widemm
from tests.conftest import DATA
from widemm import (
    WideDeepClassifier,
    WideDeepMultiTask,
    WideDeepRegressor,
    join_labels,
    split_labels,
)
from widemm.heads import Head
from widemm.training.nash import solve
from widemm.training.objective import Objective, head_losses

INPUTS = [
    "Title",
    "Year",
    "Runtime",
    "Rating",
    "Director",
    "Language",
    "Country",
    "Reviews",
    "BoxOffice",
]
TASKS = ["Genre", "Meter", "Metacritic"]


@pytest.fixture(scope="module")
def movies():
    frame = pd.read_parquet(DATA / "movies.parquet").sample(3000, random_state=0)
    return train_test_split(frame, test_size=0.25, random_state=0)


@pytest.fixture(scope="module")
def multitask(movies):
    train, _ = movies
    model = WideDeepMultiTask(random_state=0, max_epochs=15)
    return model.fit(train[INPUTS], train[TASKS])


# ---------------------------------------------------------------- the objective
def test_each_head_loss_is_its_closed_form_and_unknown_targets_add_nothing():
    g = torch.Generator().manual_seed(0)
    z = torch.randn(6, 1 + 3 + 2 + 2, generator=g)
    binary = torch.tensor([1, 0, 1, 1, 0, float("nan")])
    classes = torch.tensor([2, 0, 1, float("nan"), 1, 0])
    labels = torch.tensor([[1, 0], [0, 0], [1, 1], [0, 1], [float("nan")] * 2, [1, 0]])
    values = torch.randn(6, 2, generator=g)
    values[1, 0] = float("nan")
    y = torch.cat([binary[:, None], classes[:, None], labels, values], 1)
    heads = [
        Head("b", "binary"),
        Head("c", "multiclass", n_classes=3),
        Head("l", "multilabel", 2),
        Head("r", "regression", 2),
    ]
    parts = {
        h.name: head_losses(h, zb, yb) for h, zb, yb in Objective(heads).blocks(z, y)
    }
    k = ~binary.isnan()
    bce = F.binary_cross_entropy_with_logits(z[k, 0], binary[k], reduction="sum")
    assert parts["b"].sum() == pytest.approx(float(bce), rel=1e-6)
    assert parts["b"][5] == 0
    k = ~classes.isnan()
    ce = F.cross_entropy(z[k, 1:4], classes[k].long(), reduction="sum")
    assert parts["c"].sum() == pytest.approx(float(ce), rel=1e-6)
    per_label = F.binary_cross_entropy_with_logits(
        z[:, 4:6], labels.nan_to_num(0), reduction="none"
    )
    assert parts["l"][0] == pytest.approx(float(per_label[0].mean()), rel=1e-6)
    assert parts["l"][4] == 0
    assert parts["r"][1] == pytest.approx(
        float((z[1, 7] - values[1, 1]) ** 2), rel=1e-6
    )
    # the total: weights times sums, each divided by the head's known share
    weighted = [Head("b", "binary", weight=2.0, known=0.5)]
    total = Objective(weighted)(z[:, :1], binary[:, None])
    assert float(total) == pytest.approx(2 * float(bce) / 0.5, rel=1e-6)


def test_class_weight_focal_and_quantile_losses():
    z = torch.tensor([[2.0, 0.0, -1.0], [0.5, 0.2, 0.1]])
    y = torch.tensor([[0.0], [2.0]])
    plain = head_losses(Head("c", "multiclass", n_classes=3), z, y)
    weighted = head_losses(
        Head("c", "multiclass", n_classes=3, class_weight=(3.0, 1.0, 0.5)), z, y
    )
    assert torch.allclose(weighted, plain * torch.tensor([3.0, 0.5]))
    focal = head_losses(Head("c", "multiclass", n_classes=3, focal_gamma=2.0), z, y)
    p = torch.softmax(z, 1)[[0, 1], [0, 2]]
    assert torch.allclose(focal, (1 - p) ** 2 * plain)
    q = Head("r", "regression", quantiles=(0.1, 0.5, 0.9))
    pred, truth = torch.tensor([[0.0, 1.0, 2.0]]), torch.tensor([[1.5]])
    e = 1.5 - pred[0]
    pinball = torch.maximum(
        torch.tensor([0.1, 0.5, 0.9]) * e, torch.tensor([-0.9, -0.5, -0.1]) * e
    )
    assert float(head_losses(q, pred, truth)[0]) == pytest.approx(float(pinball.mean()))


def test_uncertainty_weighting_is_kendalls_form_and_learns():
    z, y = torch.randn(8, 1), torch.randn(8, 1)
    objective = Objective([Head("r", "regression")], "uncertainty")
    with torch.no_grad():
        objective.log_vars.fill_(0.7)
    mse = float(((z - y) ** 2).sum())
    assert float(objective(z, y)) == pytest.approx(
        np.exp(-0.7) * mse + 0.7 * 8, rel=1e-6
    )
    objective(z, y).backward()
    assert objective.log_vars.grad is not None
    assert objective.log_vars.grad.abs() > 0


def test_famo_divides_each_task_gradient_by_its_loss_and_favours_the_slower_task():
    heads = [Head("a", "regression"), Head("b", "regression")]
    famo, fixed = Objective(heads, "famo"), Objective(heads)
    z = torch.tensor([[0.0, 0.0], [1.0, 2.0]], requires_grad=True)
    y = torch.tensor([[1.0, 0.0], [0.0, 0.0]])  # losses per row: a 1, b 2
    step, reported = famo.step_loss(z, y)
    assert float(reported) == pytest.approx(float(fixed(z, y)))  # fixed weights'
    step.backward()
    # d/dz of 2 rows * 2 * (0.5 log l_a + 0.5 log l_b) / (0.5 / 1 + 0.5 / 2):
    # each task's gradient over its loss, times 8 / 3.
    expected = torch.tensor([[-1.0, 0.0], [1.0, 2.0]]) * torch.tensor([1.0, 0.5])
    torch.testing.assert_close(z.grad, expected * 8 / 3)

    for _ in range(20):  # task a's loss halves each step, b's falls by a tenth
        famo.famo.update(torch.tensor([1.0, 1.0]), torch.tensor([0.5, 0.9]))
    weights = famo.task_weights()
    assert weights["b"] > 1.2 > 0.8 > weights["a"]
    assert weights["a"] + weights["b"] == pytest.approx(2.0)
    with pytest.raises(ValueError, match=r"'famo'.*'pcgrad'"):
        Objective(heads, "pcgrad")


def test_nash_weights_give_every_task_the_same_gain_times_its_weight():
    # a_t (G G^T a)_t = 1: orthogonal gradients get 1 / |g_t|; conflicting
    # ones still get a_t g_t . d equal; a task without gradient keeps its own
    fixed = np.array([1.0, 1.0, 5.0])
    gram = np.diag([4.0, 1.0, 0.0])  # |g| 2 and 1; the third: no known target
    a = solve(gram, fixed)
    assert a[2] == 5.0
    assert a[:2].sum() == pytest.approx(2.0)
    assert a[0] / a[1] == pytest.approx(0.5, rel=1e-4)
    g = np.array([[1.0, 0.0], [-0.6, 1.0], [0.3, 3.0]])
    a = solve(g @ g.T, np.ones(3))
    gains = a * (g @ (a @ g))
    assert gains == pytest.approx(np.full(3, gains[0]), rel=1e-4)
    assert a.sum() == pytest.approx(3.0)


def test_nash_step_loss_weighs_tasks_by_their_gradients_at_the_shared_layer():
    heads = [Head("a", "regression"), Head("b", "regression")]
    nash, fixed = Objective(heads, "nash"), Objective(heads)
    torch.manual_seed(0)
    shared = torch.randn(8, 3, requires_grad=True)
    z = shared @ torch.tensor([[1.0, 0.5], [0.0, -1.0], [2.0, 0.0]])
    y = torch.randn(8, 2)
    step, reported = nash.step_loss(z, y, shared=shared)
    assert float(reported) == pytest.approx(float(fixed(z, y)))
    sums = nash.loss_sums(z, y)[0]
    g = [torch.autograd.grad(s, shared, retain_graph=True)[0].flatten() for s in sums]
    a = torch.tensor(list(nash.task_weights().values()))
    d = a[0] * g[0] + a[1] * g[1]
    torch.testing.assert_close(
        torch.autograd.grad(step, shared)[0].flatten(), d, rtol=1e-5, atol=1e-6
    )
    gains = a * torch.stack([g[0] @ d, g[1] @ d])
    assert float(gains[0]) == pytest.approx(float(gains[1]), rel=1e-3)
    assert float(a.sum()) == pytest.approx(2.0)
    with pytest.raises(ValueError, match="representation"):
        nash.step_loss(z, y)


def test_gradnorm_step_loss_is_its_weights_and_they_even_the_gradient_norms():
    heads = [Head("a", "regression"), Head("b", "regression")]
    gradnorm, fixed = Objective(heads, "gradnorm"), Objective(heads)
    torch.manual_seed(0)
    shared = torch.randn(16, 2, requires_grad=True)
    y = torch.randn(16, 2)
    big = torch.tensor([[3.0, 0.0], [0.0, 1.0]])  # a's gradient the larger
    z = shared @ big
    step, reported = gradnorm.step_loss(z, y, shared=shared)
    assert float(reported) == pytest.approx(float(fixed(z, y)))
    sums = gradnorm.loss_sums(z, y)[0]
    expected = torch.autograd.grad(sums.sum(), shared, retain_graph=True)[0]
    got = torch.autograd.grad(step, shared, retain_graph=True)[0]
    torch.testing.assert_close(got, expected)
    norms = [torch.autograd.grad(s, shared, retain_graph=True)[0].norm() for s in sums]
    for _ in range(150):  # the same losses, no task lags: the weights even out
        gradnorm.step_loss(shared @ big, y, shared=shared)  # the gradients' norms
    weights = gradnorm.task_weights()
    ratio = float(norms[0] / norms[1])
    assert ratio > 3
    assert weights["b"] / weights["a"] == pytest.approx(ratio, rel=0.1)
    assert weights["a"] + weights["b"] == pytest.approx(2.0)
    # The same gradient norms, but a's loss falls and b's does not: b lags.
    lagging = Objective(heads, "gradnorm")
    one = torch.randn(16, 1, requires_grad=True)
    start = one.detach()
    for step in range(60):
        f = torch.tensor([0.95**step, 1.0])  # residual f * start, slope 1 / f
        lagging.step_loss(y + f * start + (one - start) / f, y, shared=one)
    weights = lagging.task_weights()
    assert weights["b"] > 1.2 > 0.8 > weights["a"]
    with pytest.raises(ValueError, match="representation"):
        gradnorm.step_loss(z, y)


def test_gradnorm_keeps_the_weight_of_a_task_without_known_targets():
    heads = [Head("a", "regression"), Head("b", "regression"), Head("c", "regression")]
    gradnorm = Objective(heads, "gradnorm")
    torch.manual_seed(0)
    shared = torch.randn(8, 3, requires_grad=True)
    y = torch.randn(8, 3)
    y[:, 2] = float("nan")  # c: nothing known in these batches
    for _ in range(20):
        gradnorm.step_loss(shared * torch.tensor([3.0, 1.0, 1.0]), y, shared=shared)
    weights = gradnorm.task_weights()
    assert weights["c"] == pytest.approx(1.0, rel=1e-5)
    assert weights["b"] > weights["a"]
    assert sum(weights.values()) == pytest.approx(3.0)


def test_unknown_targets_send_no_gradient_to_their_head():
    z = torch.zeros(4, 2, requires_grad=True)
    y = torch.tensor([[1.0, float("nan")], [0.0, float("nan")], [1.0, 3.0], [0.0, 1.0]])
    Objective([Head("a", "binary"), Head("m", "regression")])(z, y).backward()
    assert torch.all(z.grad[:2, 1] == 0)
    assert torch.all(z.grad[2:, 1] != 0)
    assert torch.all(z.grad[:, 0] != 0)


# ---------------------------------------------------------------- estimators
def test_multilabel_classifier_follows_sklearn_conventions(movies):
    train, test = movies
    Y = split_labels(train["Genre"].fillna(""))
    Y = Y.loc[:, Y.sum() >= 30]  # labels with enough positives
    model = WideDeepClassifier(random_state=0, max_epochs=15).fit(train[INPUTS], Y)
    assert list(model.classes_) == list(Y.columns)
    truth = split_labels(test["Genre"].fillna(""))[Y.columns]
    proba, predicted = model.predict_proba(test[INPUTS]), model.predict(test[INPUTS])
    assert proba.shape == predicted.shape == truth.shape
    assert set(np.unique(predicted)) <= {0, 1}
    assert roc_auc_score(truth, proba, average="micro") > 0.8
    assert join_labels(Y.head(3)).tolist() == [
        ", ".join(c for c in Y.columns if Y.iloc[i][c] == 1) for i in range(3)
    ]


def test_multi_target_regression_scales_each_target(movies):
    train, test = movies
    cols = ["Runtime", "Reviews"]
    X, Y = train[["Title", "Year", "Director", "Country", "Language"]], train[cols]
    keep = Y.notna().all(axis=1)
    Y = Y.assign(Reviews=Y["Reviews"] * 1e4)  # very different scales
    model = WideDeepRegressor(random_state=0, max_epochs=15).fit(X[keep], Y[keep])
    target = model.targets_[0]
    np.testing.assert_allclose(target.scale_, Y[keep].std(ddof=0), rtol=1e-6)
    test = test.dropna(subset=cols)
    predicted = model.predict(test[X.columns])
    assert predicted.shape == (len(test), 2)
    assert r2_score(test["Reviews"] * 1e4, predicted[:, 1]) > 0.1
    assert r2_score(test["Runtime"], predicted[:, 0]) > 0.0


def test_multitask_trains_every_head_with_missing_targets_masked(movies, multitask):
    train, test = movies
    assert [(t.name, t.kind) for t in multitask.targets_] == [
        ("Genre", "multilabel"),
        ("Meter", "regression"),
        ("Metacritic", "regression"),
    ]
    assert train["Metacritic"].isna().mean() > 0.5
    history = multitask.history_
    for column in [
        "valid_Genre_roc_auc_micro",
        "valid_Meter_rmse",
        "valid_Metacritic_rmse",
    ]:
        assert history[column].notna().all()
    predicted = multitask.predict(test[INPUTS])
    assert list(predicted.columns) == TASKS
    assert predicted.index.equals(test.index)
    assert isinstance(predicted["Genre"].iloc[0], str)
    scores = multitask.scores(test[INPUTS], test[TASKS])
    assert scores["Genre_roc_auc_micro"] > 0.75
    assert scores["Meter_r2"] > 0.1
    assert scores["Metacritic_r2"] > 0.1
    assert set(multitask.predict_proba(test[INPUTS].head(3))) == {"Genre"}


@pytest.mark.parametrize("weighting", ["famo", "nash", "gradnorm"])
def test_learned_weighting_trains_and_reports_its_task_weights(movies, weighting):
    train, test = movies
    model = WideDeepMultiTask(random_state=0, max_epochs=3, task_weighting=weighting)
    model.fit(train[INPUTS], train[TASKS])
    weights = model.history_[[f"weight_{task}" for task in TASKS]]
    start = {"Genre": 21.0, "Meter": 1.0, "Metacritic": 1.0}  # Genre: its labels
    assert weights.sum(axis=1).to_numpy() == pytest.approx(sum(start.values()))
    moved = weights.iloc[-1].to_numpy() - np.array(list(start.values()))
    assert np.abs(moved).max() > 1e-3
    scores = model.scores(test[INPUTS], test[TASKS])
    assert scores["Genre_roc_auc_micro"] > 0.75
    assert scores["Meter_r2"] > 0.1


def test_multitask_explains_each_task_and_round_trips(movies, multitask, tmp_path):
    _, test = movies
    test = test.head(200)
    rows = test[INPUTS].head(5)
    meter = multitask.explain(rows, target="Meter")
    assert meter.output_name == "value (Meter)"
    assert meter.max_error < 0.5
    np.testing.assert_allclose(
        meter.output, multitask.predict(rows)["Meter"], rtol=1e-5
    )
    genre = multitask.explain(rows, target="Genre", class_index=0)
    assert genre.output_name.endswith("(Genre)")
    with pytest.raises(ValueError, match="'Oscars' is not one of this model's targets"):
        multitask.explain(rows, target="Oscars")
    multitask.save(tmp_path / "m")
    loaded = widemm.load(tmp_path / "m")
    page = loaded.report(tmp_path / "m", data=(test[INPUTS], test[TASKS]))
    assert "Metacritic_r2" in page.read_text()
    pd.testing.assert_frame_equal(loaded.predict(rows), multitask.predict(rows))


def test_one_task_answers_as_a_single_target_estimator_and_scores():
    """score() looked for the task's named scores, which one task has not: NaN."""
    from sklearn.datasets import load_diabetes

    X, y = load_diabetes(return_X_y=True, as_frame=True)
    Y = pd.DataFrame({"high": np.where(y > y.median(), "high", "low")})
    model = WideDeepMultiTask(max_epochs=2, random_state=0).fit(X, Y)
    assert model.predict(X[:3]).shape == (3,)
    assert model.predict_proba(X[:3]).shape == (3, 2)
    scores = model.scores(X, Y)
    assert model.score(X, Y) == scores["accuracy"] > 0.6
    regression = WideDeepMultiTask(max_epochs=2, random_state=0).fit(X, y)
    assert regression.score(X, y) == regression.scores(X, y)["r2"] > 0


def test_task_options_are_checked():
    X = pd.DataFrame({"a": np.arange(40.0)})
    with pytest.raises(
        TypeError, match=r"WideDeepRegressor\(\) got unexpected .*class_weight"
    ):
        WideDeepRegressor(class_weight="balanced")
    with pytest.raises(
        TypeError, match=r"WideDeepClassifier\(\) got unexpected .*quantiles"
    ):
        WideDeepClassifier(quantiles=(0.1, 0.5, 0.9))
    Y = pd.DataFrame({"y": X["a"] > 5})
    with pytest.raises(ValueError, match=r"tasks names \['z'\]"):
        WideDeepMultiTask(tasks={"z": "binary"}).fit(X, Y)
    with pytest.raises(ValueError, match=r"option\(s\) \['sep'\]"):
        WideDeepMultiTask(tasks={"y": {"kind": "binary", "sep": ";"}}).fit(X, Y)
    with pytest.raises(ValueError, match=r"that include 0\.5"):
        WideDeepRegressor(quantiles=(0.1, 0.9)).fit(X, X["a"])


# ---------------------------------------------------------------- weights
def _small_adult(adult, n=400):
    X = adult.drop(columns="income").head(n)
    return X, adult["income"].head(n)


def test_zero_weight_is_a_dropped_row(adult):
    X, y = _small_adult(adult)
    weight = np.ones(len(X))
    weight[::7] = 0
    options = dict(random_state=0, max_epochs=5)
    weighted = WideDeepClassifier(**options).fit(X, y, sample_weight=weight)
    dropped = WideDeepClassifier(**options).fit(X[weight > 0], y[weight > 0])
    np.testing.assert_array_equal(weighted.predict_proba(X), dropped.predict_proba(X))


def test_weight_two_is_a_repeated_row(adult):
    X, y = _small_adult(adult, 300)
    X = X.select_dtypes("number")
    weight = np.where(np.arange(len(X)) % 3 == 0, 2.0, 1.0)
    repeat = np.repeat(np.arange(len(X)), weight.astype(int))
    # Where training sees the same gradients: one full batch a step, no validation
    # split, no dropout, no data-fitted scaling, the same columns, no trees (their
    # folds cut repeated rows apart).
    options = dict(
        trees=False,
        random_state=0,
        max_epochs=10,
        batch_size=1024,
        validation_fraction=0,
        scaling=None,
        cont_cols=list(X.columns),
        tab_params={"dropout": 0.0, "cont_embed_dim": 16},
        fusion_params={"dropout": 0.0},
    )
    weighted = WideDeepClassifier(**options).fit(X, y, sample_weight=weight)
    repeated = WideDeepClassifier(**options).fit(X.iloc[repeat], y.iloc[repeat])
    unweighted = WideDeepClassifier(**options).fit(X, y)
    p = weighted.predict_proba(X)[:, 1]
    gap_repeated = np.abs(p - repeated.predict_proba(X)[:, 1]).max()
    gap_unweighted = np.abs(p - unweighted.predict_proba(X)[:, 1]).max()
    assert gap_repeated < 1e-4
    assert gap_unweighted > 1e-2


def test_balanced_class_weight_raises_minority_recall(adult):
    X, y = adult.drop(columns="income"), adult["income"]
    rare = (y == ">50K") & (np.arange(len(y)) % 5 != 0)  # keep a fifth of positives
    X, y = X[~rare], y[~rare]
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, random_state=0, stratify=y
    )
    options = dict(random_state=0, max_epochs=10)
    plain = WideDeepClassifier(**options).fit(X_train, y_train)
    balanced = WideDeepClassifier(class_weight="balanced", **options).fit(
        X_train, y_train
    )
    recall = [
        recall_score(y_test, m.predict(X_test), pos_label=">50K")
        for m in (plain, balanced)
    ]
    assert recall[1] > recall[0] + 0.2


def expected_calibration_error(proba, y, bins=10):
    top, hit = proba.max(1), proba.argmax(1) == y
    edges = np.linspace(0, 1, bins + 1)
    which = np.clip(np.digitize(top, edges) - 1, 0, bins - 1)
    return sum(
        abs(hit[which == b].mean() - top[which == b].mean()) * (which == b).mean()
        for b in range(bins)
        if (which == b).any()
    )


def test_calibration_lowers_expected_calibration_error():
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True, as_frame=True)
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, random_state=0, test_size=0.4
    )
    # trained long without early stopping, and without the trees: overconfident
    options = dict(
        random_state=0,
        max_epochs=60,
        n_iter_no_change=None,
        validation_fraction=0.25,
        trees=False,
    )
    raw = WideDeepClassifier(**options).fit(X_train, y_train)
    calibrated = WideDeepClassifier(calibrate=True, **options).fit(X_train, y_train)
    assert calibrated.targets_[0].temperature_ > 1
    np.testing.assert_array_equal(raw.predict(X_test), calibrated.predict(X_test))
    ece = [
        expected_calibration_error(m.predict_proba(X_test), y_test.to_numpy())
        for m in (raw, calibrated)
    ]
    assert ece[1] < ece[0]


def test_quantile_intervals_cover_held_out_rows():
    frame = pd.read_parquet(DATA / "california_housing.parquet")
    X, y = frame.drop(columns="MedHouseVal"), frame["MedHouseVal"]
    X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0)
    coverage = []
    for calibrate in (False, True):
        model = WideDeepRegressor(
            quantiles=(0.05, 0.5, 0.95), calibrate=calibrate, random_state=0
        ).fit(X_train, y_train)
        q = model.predict_quantiles(X_test)
        assert q.shape == (len(X_test), 3)
        assert (np.diff(q, axis=1) >= 0).all()
        coverage.append(((y_test >= q[:, 0]) & (y_test <= q[:, 2])).mean())
    np.testing.assert_allclose(model.predict(X_test), q[:, 1])
    assert 0.85 <= coverage[0] <= 0.95  # the pinball loss alone: near 90%
    assert abs(coverage[1] - 0.9) < abs(coverage[0] - 0.9)  # conformal: nearer
    assert 0.88 <= coverage[1] <= 0.92


# ---------------------------------------------------------------- CLI and serving
def test_cli_fits_predicts_and_evaluates_several_targets(movies, tmp_path, capsys):
    from widemm.cli import main

    train, test = movies
    train[[*INPUTS, *TASKS]].head(800).to_parquet(tmp_path / "train.parquet")
    test[[*INPUTS, *TASKS]].head(100).to_parquet(tmp_path / "test.parquet")
    fit = ["fit", str(tmp_path / "train.parquet"), "--target", "Genre", "--target",
           "Meter", "--out", str(tmp_path / "m"), "--set", "max_epochs=3"]  # fmt: skip
    assert main(fit) == 0
    out = tmp_path / "p.csv"
    assert main(["predict", str(tmp_path / "m"), str(tmp_path / "test.parquet"),
                 "--out", str(out)]) == 0  # fmt: skip
    predicted = pd.read_csv(out, index_col=0)
    assert {"Genre", "Meter", "proba_Genre_Drama"} <= set(predicted.columns)
    assert len(predicted) == 100
    capsys.readouterr()
    assert main(["evaluate", str(tmp_path / "m"), str(tmp_path / "test.parquet")]) == 0
    scores = json.loads(capsys.readouterr().out)
    assert {"Genre_roc_auc_micro", "Meter_r2"} <= set(scores)


def test_service_describes_and_predicts_every_task_kind(movies, multitask):
    from widemm.contract import describe
    from widemm.serve import _finite, predictions

    _, test = movies
    rows = test[INPUTS].head(3)
    meta = describe(multitask)
    kinds = {t["name"]: t["kind"] for t in meta["tasks"]}
    assert kinds == {
        "Genre": "multilabel",
        "Meter": "regression",
        "Metacritic": "regression",
    }
    assert meta["task"] == "multitask"
    reply = json.loads(json.dumps(_finite(predictions(multitask, rows))))
    first = reply["prediction"][0]
    assert set(first) == set(TASKS)
    assert first["Meter"] == pytest.approx(multitask.predict(rows)["Meter"].iloc[0])
    assert set(reply["probabilities"][0]["Genre"]) == set(multitask.targets_[0].labels_)


def test_multitask_streams_from_parquet_with_several_target_columns(movies, tmp_path):
    train, test = movies
    train[[*INPUTS, *TASKS]].to_parquet(tmp_path / "movies.parquet", index=False)
    model = WideDeepMultiTask(max_epochs=2, random_state=0, stream_chunk_rows=700)
    model.fit(tmp_path / "movies.parquet", TASKS)
    assert list(model.feature_names_in_) == INPUTS
    assert {"valid_Genre_roc_auc_micro", "valid_Metacritic_rmse"} <= set(
        model.history_.columns
    )
    assert list(model.predict(test[INPUTS].head(3)).columns) == TASKS


def test_each_target_keeps_the_share_of_its_head_that_validates_best():
    # One target the inputs explain, one they cannot: trained long without
    # early stopping, the head memorises the noise; its share drops, and the
    # model gives what the shares say on every row.
    rng = np.random.default_rng(0)
    X = pd.DataFrame(rng.normal(size=(400, 4)), columns=list("abcd"))
    Y = pd.DataFrame({"signal": 2 * X["a"] - X["b"], "noise": rng.normal(size=400)})
    model = WideDeepRegressor(
        random_state=0, max_epochs=40, n_iter_no_change=None, trees=False
    ).fit(X, Y)
    shares = model.head_shares_
    assert set(shares) == {"y[0]", "y[1]"}
    assert shares["y[0]"] >= 0.9
    assert shares["y[1]"] <= 0.5
    X_new = pd.DataFrame(rng.normal(size=(300, 4)), columns=list("abcd"))
    noise = model.predict(X_new)[:, 1]
    assert noise.std() < 0.5  # the noise head, shrunk towards the mean


def test_a_share_moves_the_trees_scale_back_towards_one_too():
    # The trees' scale learns beside the heads; shares shrink both towards the
    # start (heads at zero, trees at scale 1). A scale gone to -1 validates worst
    # of all: it goes back to 1; the other, at 1, stays.
    from widemm.training import Trainer
    from widemm.training.shrinkage import shrink_heads

    rng = np.random.default_rng(0)
    X = pd.DataFrame(rng.normal(size=(700, 3)), columns=list("abc"))
    Y = pd.DataFrame({"u": 2 * X["a"] - X["b"], "v": X["c"] ** 2})
    model = WideDeepRegressor(random_state=0, max_epochs=2).fit(X[:400], Y[:400])
    net = model.model_
    with torch.no_grad():
        for p in net.heads.parameters():
            p.zero_()
        net.trees.scale.copy_(torch.tensor([-1.0, 1.0]))
    trainer = Trainer(model._config(objective=model._objective(), batch_size=64))
    shares = shrink_heads(net, trainer, model._dataset(X[400:], Y[400:]))
    assert shares == {"y[0]": 1.0, "y[1]": 1.0}  # heads at zero: nothing to shrink
    assert net.trees.scale.tolist() == [1.0, 1.0]
