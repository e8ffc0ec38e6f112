"""Each parameter is declared once, where it is used; the estimators' show all."""

import inspect
import subprocess
import sys
import textwrap

import pytest
from sklearn.base import clone

from widemm import WideDeepClassifier, WideDeepMultiTask, WideDeepRegressor
from widemm.pipeline import FeaturePipeline
from widemm.training import TrainConfig


def test_a_default_changed_where_it_is_declared_changes_everywhere():
    """In a fresh interpreter: one pipeline and one training default changed at
    their declaration are the estimator's, its signature's and docs', the fitted
    pipeline's and the Trainer's."""
    code = textwrap.dedent(
        """
        import pydoc, re, sys
        import numpy as np, pandas as pd
        from widemm.pipeline import FeaturePipeline
        from widemm.training import TrainConfig, Callback
        assert "widemm.estimators" not in sys.modules
        FeaturePipeline.__init__.__kwdefaults__["min_frequency"] = 3
        TrainConfig.__init__.__kwdefaults__["weight_decay"] = 0.25
        from widemm import WideDeepClassifier

        seen = {}

        class Spy(Callback):
            def on_fit_start(self, trainer, model):
                seen["weight_decay"] = trainer.config.weight_decay

        model = WideDeepClassifier()
        assert (model.min_frequency, model.weight_decay) == (3, 0.25)
        doc = pydoc.render_doc(WideDeepClassifier)
        assert re.search(r"min_frequency: 'int' = 3\\b", doc), doc[:2000]
        assert re.search(r"weight_decay: 'float' = 0.25\\b", doc)
        rng = np.random.default_rng(0)
        X = pd.DataFrame({"a": rng.normal(size=60), "b": rng.choice(list("xyz"), 60)})
        y = (X["a"] > 0).astype(int)
        model.set_params(max_epochs=1, callbacks=[Spy()], random_state=0).fit(X, y)
        assert model.pipeline_.min_frequency == 3
        assert model.pipeline_.preprocessors_["tab"].min_frequency == 3
        assert seen["weight_decay"] == 0.25
        assert TrainConfig(objective="binary").weight_decay == 0.25
        print("ok")
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.strip() == "ok"


def test_the_estimators_take_the_pipelines_and_trainings_parameters():
    pipeline = inspect.signature(FeaturePipeline).parameters
    config = inspect.signature(TrainConfig).parameters
    for estimator in (WideDeepClassifier, WideDeepRegressor, WideDeepMultiTask):
        params = inspect.signature(estimator).parameters
        for name, p in pipeline.items():
            assert params[name].default == p.default, (estimator, name)
        for name in ("learning_rate", "weight_decay", "n_iter_no_change"):
            assert params[name].default == config[name].default, (estimator, name)
        assert set(estimator().get_params()) == set(params)


def test_task_options_sit_only_on_the_estimators_that_use_them():
    assert {"class_weight", "focal_gamma"} <= set(WideDeepClassifier().get_params())
    assert not {"quantiles", "tasks", "task_weighting"} & set(
        WideDeepClassifier().get_params()
    )
    assert "quantiles" in WideDeepRegressor().get_params()
    assert not {"class_weight", "tasks"} & set(WideDeepRegressor().get_params())
    with pytest.raises(
        TypeError, match=r"unexpected keyword argument\(s\) \['tasks'\]"
    ):
        WideDeepClassifier(tasks={"y": "binary"})
    with pytest.raises(TypeError, match="Did you mean 'learning_rate'"):
        WideDeepRegressor(learning_rte=0.1)


def test_a_users_subclass_adds_its_parameters_to_all_the_others():
    class Thresholded(WideDeepClassifier):
        def __init__(self, *, threshold: float = 0.5, **params):
            super().__init__(**params)
            self.threshold = threshold

    model = Thresholded(threshold=0.3, class_weight="balanced")
    params = inspect.signature(Thresholded).parameters
    assert {"threshold", "class_weight", "image_size", "pretrained"} <= set(params)
    assert len(params) == len(inspect.signature(WideDeepClassifier).parameters) + 1
    assert clone(model).get_params()["threshold"] == 0.3
