"""A run's identity decides its seed and whether it resumes (issue #12's repros)."""

import warnings

import numpy as np
import pytest
import torch

from widemm import WideDeepClassifier
from widemm.training import Callback
from widemm.training.checkpoint import LAST


class CountEpochs(Callback):
    def __init__(self):
        self.epochs = 0

    def on_epoch_start(self, trainer, model):
        self.epochs += 1


def small(**params):
    defaults = {
        "tab_params": {"hidden_dims": (16,)},
        "fusion_params": {"hidden_dims": (8,)},
        "max_epochs": 3,
        "batch_size": 128,
    }
    return WideDeepClassifier(**{**defaults, **params})


def same_weights(a, b):
    sa, sb = a.model_.state_dict(), b.model_.state_dict()
    return all(torch.equal(sa[k], sb[k]) for k in sa)


@pytest.fixture
def data(adult_xy):
    X, y = adult_xy
    return X.iloc[:800], y.iloc[:800]


def test_a_finished_run_run_again_resumes_with_the_checkpoint_seed(data, tmp_path):
    X, y = data
    first = small(random_state=None, checkpoint_dir=tmp_path).fit(X, y)
    counter = CountEpochs()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # same run: no "another run" warning
        again = small(
            random_state=None, checkpoint_dir=tmp_path, callbacks=[counter]
        ).fit(X, y)
    assert counter.epochs == 0  # nothing left to train
    assert same_weights(first, again)
    assert again.history_.equals(first.history_)


def test_other_data_in_the_same_folder_starts_fresh(data, tmp_path):
    X, y = data
    first = small(random_state=0, checkpoint_dir=tmp_path).fit(X, y)
    flipped = y.map({"<=50K": ">50K", ">50K": "<=50K"})
    with pytest.warns(UserWarning, match="another run.*target"):
        model = small(random_state=0, checkpoint_dir=tmp_path).fit(X, flipped)
    assert len(model.history_) == 3  # trained, not resumed
    assert (first.predict(X) == flipped).mean() < 0.3  # the old run's model...
    assert (model.predict(X) == flipped).mean() > 0.6  # ...is not what came back


def test_a_changed_setting_is_named_and_not_resumed(data, tmp_path):
    X, y = data
    small(random_state=0, checkpoint_dir=tmp_path).fit(X, y)
    counter = CountEpochs()
    with pytest.warns(UserWarning, match=r"learning_rate: 0\.001 -> 0\.01"):
        small(
            random_state=0,
            learning_rate=0.01,
            checkpoint_dir=tmp_path,
            callbacks=[counter],
        ).fit(X, y)
    assert counter.epochs == 3
    state = torch.load(tmp_path / LAST, weights_only=True)
    assert state["run"]["param:learning_rate"] == "0.01"  # the new run's now


def test_cross_validation_never_reuses_a_folds_model(data, tmp_path):
    from sklearn.model_selection import cross_val_score

    X, y = data
    model = small(random_state=0, checkpoint_dir=tmp_path)
    with pytest.warns(UserWarning, match="another run"):
        scores = cross_val_score(model, X, y, cv=3)
    fresh = cross_val_score(small(random_state=0), X, y, cv=3)
    np.testing.assert_allclose(scores, fresh)


def test_an_early_stopped_run_run_again_is_a_no_op(data, tmp_path):
    X, y = data
    params = {
        "random_state": 0,
        "max_epochs": 30,
        "n_iter_no_change": 1,
        "learning_rate": 0.03,
        "checkpoint_dir": tmp_path,
    }
    first = small(**params).fit(X, y)
    assert len(first.history_) < 30  # it did stop early
    counter = CountEpochs()
    again = small(**params, callbacks=[counter]).fit(X, y)
    assert counter.epochs == 0
    assert same_weights(first, again)  # the best epoch's weights, as before
    assert again.history_.equals(first.history_)


def test_unknown_trainer_params_are_named(data):
    X, y = data
    with pytest.raises(ValueError, match=r"'max_epochs'.*pass max_epochs="):
        small(trainer_params={"max_epochs": 3}).fit(X, y)
    with pytest.raises(ValueError, match=r"unknown key 'precison'.*'precision'"):
        small(trainer_params={"precison": "bf16"}).fit(X, y)
