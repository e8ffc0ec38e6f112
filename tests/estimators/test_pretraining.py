"""pretrain sets the estimator's ``pretrained`` parameter; fit starts there."""

import warnings

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV

import widemm
from widemm.datasets import load_adult
from widemm.estimators.pretraining import PARTS, Pretrained

NO_CHECK = "ignore:fit from a pretrained start has no validation rows"


@pytest.fixture(scope="module")
def adult_1200():
    df = load_adult().sample(1200, random_state=0)
    return df.drop(columns="income"), df["income"]


def assert_starts_from(model, pretrained: Pretrained):
    """At learning rate 0, a model started from ``pretrained`` keeps its weights."""
    state = model.model_.state_dict()
    assert any(k.startswith("fusion.") for k in pretrained.weights)
    for key, value in pretrained.weights.items():
        torch.testing.assert_close(state[key], value)
    assert model.pipeline_.n_rows_ == pretrained.pipeline.n_rows_


@pytest.mark.filterwarnings(NO_CHECK)
def test_pretrain_then_fit_starts_from_it_and_saves(adult_1200, tmp_path):
    X, y = adult_1200
    model = widemm.WideDeepClassifier(max_epochs=2, random_state=0, tab_model="mlp")
    assert model.pretrain(X, epochs=3) is model
    pretrained = model.pretrained
    losses = pretrained.history["contrastive_loss"]
    assert losses.iloc[-1] < losses.iloc[0]
    zero = clone(model).set_params(learning_rate=0.0, validation_fraction=0.0)
    with pytest.warns(UserWarning, match="no validation rows"):
        zero.fit(X.iloc[:200], y.iloc[:200])
    assert zero.start_ == {"kept": "pretrained"}
    assert_starts_from(zero, pretrained)
    assert model.pretrained is pretrained  # fits leave the parameter as it is
    model.fit(X.iloc[:200], y.iloc[:200])
    assert model.start_["kept"] in ("pretrained", "fresh")
    assert model.embed(X.iloc[:7]).shape == (7, model.model_.fusion.output_dim)
    model.save(tmp_path / "m")
    again = widemm.load(tmp_path / "m")
    assert again.pretrained is None  # the model holds what it taught
    assert again.start_ == model.start_
    np.testing.assert_allclose(
        again.predict_proba(X), model.predict_proba(X), atol=1e-6
    )
    np.testing.assert_allclose(
        again.embed(X.iloc[:7]), model.embed(X.iloc[:7]), atol=1e-6
    )
    with pytest.raises(ValueError, match="not a column the model reads"):
        model.embed(X.iloc[:2], column="nope")
    model.set_params(pretrained=None).fit(X.iloc[:200], y.iloc[:200])
    assert model.pipeline_.n_rows_ == 200
    assert model.start_["kept"] == "fresh"


@pytest.mark.filterwarnings(NO_CHECK)
def test_a_clone_of_a_pretrained_estimator_starts_from_the_pretraining(adult_1200):
    X, y = adult_1200
    model = widemm.WideDeepClassifier(
        max_epochs=1,
        random_state=0,
        tab_model="mlp",
        learning_rate=0.0,
        validation_fraction=0.0,
    )
    copy = clone(model.pretrain(X, epochs=2))
    assert copy.pretrained is model.pretrained  # shared, not copied
    copy.fit(X.iloc[:200], y.iloc[:200])
    assert_starts_from(copy, model.pretrained)


@pytest.mark.filterwarnings(NO_CHECK)
def test_a_grid_search_over_a_pretrained_estimator_starts_each_fit_there(adult_1200):
    X, y = adult_1200
    model = widemm.WideDeepClassifier(
        max_epochs=1,
        random_state=0,
        tab_model="mlp",
        learning_rate=0.0,
        validation_fraction=0.0,
    ).pretrain(X, epochs=2)
    search = GridSearchCV(model, {"weight_decay": [0.0, 1e-4]}, cv=2)
    search.fit(X.iloc[:200], y.iloc[:200])
    assert np.isfinite(search.cv_results_["mean_test_score"]).all()
    assert_starts_from(search.best_estimator_, model.pretrained)


@pytest.mark.default_tab_model
def test_a_pretrained_start_never_validates_worse_than_fit_alone():
    """Few labels on a real table: pretraining on 2,400 unlabeled rows picks TabM
    (2,000+ rows) where the 150 labeled rows alone give the MLP."""
    df = load_adult().sample(2550, random_state=1)
    X, y = df.drop(columns="income"), df["income"]
    X_unlabeled, X_few, y_few = X.iloc[:2400], X.iloc[2400:], y.iloc[2400:]
    options = dict(random_state=0, max_epochs=8, validation_fraction=0.3)
    alone = widemm.WideDeepClassifier(**options).fit(X_few, y_few)
    pre = widemm.WideDeepClassifier(**options).pretrain(X_unlabeled, epochs=2)
    assert pre.pretrained.pipeline.tab_model_name() == "tabm"
    assert alone.pipeline_.tab_model_name() == "mlp"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        pre.fit(X_few, y_few)
    start = pre.start_
    # The fresh candidate is fit alone, exactly.
    assert start["valid_loss_fresh"] == pytest.approx(alone.start_["valid_loss_fresh"])
    kept = min(start["valid_loss_fresh"], start["valid_loss_pretrained"])
    assert start[f"valid_loss_{start['kept']}"] == kept
    dropped = [w for w in caught if "validated worse" in str(w.message)]
    assert bool(dropped) == (start["kept"] == "fresh")
    if start["kept"] == "fresh":
        np.testing.assert_allclose(pre.predict_proba(X), alone.predict_proba(X))


def test_pretrain_for_zero_epochs_keeps_the_initial_projections():
    """The baseline of bench/pretrain.py's retrieval (it raised AttributeError)."""
    df = load_adult().sample(300, random_state=0)
    X = df.drop(columns="income")
    model = widemm.WideDeepClassifier(random_state=0, tab_model="mlp")
    model.pretrain(X, epochs=0)
    assert model.pretrained.history.empty
    assert model.embed(X.iloc[:5], column="age").shape == (5, 128)
    untrained = model.pretrained.weights
    model.pretrain(X, epochs=2)  # the same seed: the same start, then it learns
    learned = [k for k in untrained if k.startswith(PARTS) and k.endswith(".weight")]
    assert any(k.startswith("fusion.") for k in learned)
    for key in learned:
        assert not torch.equal(model.pretrained.weights[key], untrained[key]), key
    with pytest.raises(ValueError, match="epochs"):
        model.pretrain(X, epochs=-1)


def test_embed_takes_a_column_by_the_name_the_user_gave_it():
    """X's column names become strings inside; embed(column=0) must still find 0."""
    df = load_adult().sample(300, random_state=0)
    X = df.drop(columns="income")
    X = X.set_axis(range(X.shape[1]), axis=1)  # integer column names
    model = widemm.WideDeepClassifier(random_state=0, tab_model="mlp")
    model.pretrain(X, epochs=1)
    assert model.embed(X.iloc[:4], column=0).shape == (4, 128)
    with pytest.raises(ValueError, match="embed\\(column=99\\): not a column"):
        model.embed(X.iloc[:4], column=99)
