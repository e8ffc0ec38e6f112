"""Load a saved estimator: its JSON through the codec, its weights into its model."""

from __future__ import annotations

import os
from pathlib import Path

from widemm import persistence
from widemm.estimators import BaseWideDeep, WideDeepClassifier, WideDeepRegressor
from widemm.pipeline import pipeline_classes


def load(path: str | os.PathLike[str]) -> WideDeepClassifier | WideDeepRegressor:
    """Load an estimator written by ``save``; it predicts exactly as before saving.

    Parameters
    ----------
    path : str or Path
        The folder given to ``save``.

    Returns
    -------
    WideDeepClassifier or WideDeepRegressor
    """
    estimators = (WideDeepClassifier, WideDeepRegressor)
    own = {persistence.class_key(c): (c, c._fitted) for c in estimators}
    classes = {**pipeline_classes(), **own}
    estimator = persistence.load(path, classes)
    if not isinstance(estimator, BaseWideDeep):
        raise ValueError(f"{path} holds a {type(estimator).__name__}, not a model.")
    estimator.model_ = estimator.pipeline_.build_model(
        estimator.n_outputs_, pretrained=False
    )
    persistence.load_weights(estimator.model_, Path(path))
    estimator.model_.eval()
    return estimator
