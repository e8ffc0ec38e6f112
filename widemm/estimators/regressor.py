"""WideDeepRegressor: one numeric target or several, optionally as quantiles."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import RegressorMixin

from widemm.estimators.base import BaseWideDeep
from widemm.targets import Target, Values


class WideDeepRegressor(RegressorMixin, BaseWideDeep):
    """Wide & deep regressor for DataFrames of tabular, text and image columns.

    Each target column is standardised for training and mapped back in
    ``predict``; ``y`` of shape (n_rows, k) trains k outputs at once. With
    ``quantiles``, each output is a set of quantiles (``predict_quantiles``)
    and ``predict`` returns the median. See :class:`BaseWideDeep` for the
    parameters and :class:`WideDeepClassifier` for the fitted attributes (all
    but ``classes_``), plus ``target_names_`` (y's columns) for several targets.

    Parameters
    ----------
    quantiles : sequence of float, optional
        Predict these quantiles (e.g. ``(0.05, 0.5, 0.95)``, which must include
        0.5) with pinball loss; ``predict`` gives the median and
        ``predict_quantiles`` all of them, for prediction intervals.
    **params
        The parameters every estimator shares: see :class:`BaseWideDeep`.
    """

    def __init__(
        self, *, quantiles: Sequence[float] | None = None, **params: Any
    ) -> None:
        super().__init__(**params)
        self.quantiles = quantiles

    def _fit_targets(self, y: Any, weight: np.ndarray | None) -> list[Target]:
        self.target_names_ = (
            np.asarray(y.columns, dtype=object)
            if isinstance(y, pd.DataFrame)
            else np.array(["y"], dtype=object)
        )
        return [Values(quantiles=self.quantiles).fit(y)]

    def predict(self, X: Any) -> np.ndarray:
        """Predicted values: (n_rows,), or (n_rows, n_targets) for several."""
        return self.outputs_.predict(self.logits(X))

    def predict_quantiles(self, X: Any) -> np.ndarray:
        """Return the ``quantiles``: (n_rows, n_quantiles).

        Several targets: (n_rows, n_targets, n_quantiles). With quantiles (0.05,
        0.5, 0.95), ``[:, [0, -1]]`` is a 90% prediction interval.
        """
        return self.outputs_.quantiles(self.logits(X))

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags
