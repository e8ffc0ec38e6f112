"""Load a saved estimator: its JSON through the codec, its weights into its model."""

from __future__ import annotations

import os
from pathlib import Path

from widemm import persistence
from widemm.estimators import ESTIMATORS, BaseWideDeep
from widemm.estimators.saving import saved_classes
from widemm.pipeline.network import check_names


def load(path: str | os.PathLike[str]) -> BaseWideDeep:
    """Load an estimator written by ``save``; it predicts exactly as before saving.

    Parameters
    ----------
    path : str or Path
        The folder given to ``save``.

    Returns
    -------
    WideDeepClassifier, WideDeepRegressor or WideDeepMultiTask
    """
    estimator = persistence.load(path, saved_classes(ESTIMATORS))
    if not isinstance(estimator, BaseWideDeep):
        raise ValueError(f"{path} holds a {type(estimator).__name__}, not a model.")
    for params in (estimator.get_params(), estimator.pipeline_.get_params()):
        try:
            check_names(params)  # as fit checks them
        except ValueError as err:
            raise ValueError(f"{path}: {err}") from None
    heads = {t.name: t.n_outputs for t in estimator.targets_}
    estimator.model_ = estimator.pipeline_.build_model(heads, pretrained=False)
    persistence.load_weights(estimator.model_, Path(path))
    estimator.model_.eval()
    return estimator
