"""WideDeepClassifier: class labels, one per row or several (multilabel)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import ClassifierMixin

from widemm.estimators.base import BaseWideDeep
from widemm.targets import Labels, LabelSets, Target


class WideDeepClassifier(ClassifierMixin, BaseWideDeep):
    """Wide & deep classifier for DataFrames of tabular, text and image columns.

    ``y`` of one column: two classes train one logit (binary cross-entropy), more
    one logit per class (cross-entropy). ``y`` a 0/1 indicator matrix (array or
    DataFrame, one column per label): multilabel, one logit per label, as in
    scikit-learn (``predict`` returns the indicator, ``predict_proba`` each
    label's probability); :func:`widemm.targets.split_labels` makes one from a
    column of delimited labels.

    Parameters
    ----------
    class_weight : "balanced", dict or None
        Weight of each class in the loss (``"balanced"``: inverse class
        frequency); multiplies ``sample_weight``. Not for multilabel ``y``.
    focal_gamma : float, optional
        Focal loss with this gamma instead of cross-entropy.
    **params
        The parameters every estimator shares: see :class:`BaseWideDeep`.

    Attributes
    ----------
    classes_ : ndarray
        The class labels (multilabel: the labels, the indicator's column names
        or 0 .. n_labels - 1).
    schema_ : ColumnSchema
        The role of each column (``print(model.schema_)`` shows a table).
    pipeline_ : FeaturePipeline
        DataFrame -> model inputs: the column roles and fitted preprocessors.
    model_ : WideDeep
        The trained network.
    targets_ : list of Labels or LabelSets
        y <-> what the model trains on (with the calibration ``temperature_``).
    history_ : DataFrame
        Per-epoch losses, validation metric, learning rate and seconds.
    head_shares_ : dict of str to float
        Several labels (or targets): each one's share of its head's output,
        chosen on the validation rows as its own stopping point
        (:mod:`widemm.training.shrinkage`); empty for one.
    n_features_in_, feature_names_in_ : int, ndarray of str

    Examples
    --------
    >>> model = WideDeepClassifier(random_state=0)
    >>> model.fit(X_train, y_train)  # doctest: +SKIP
    >>> model.predict_proba(X_test)[:, 1]  # doctest: +SKIP
    """

    def __init__(
        self,
        *,
        class_weight: str | Mapping[Any, float] | None = None,
        focal_gamma: float | None = None,
        **params: Any,
    ) -> None:
        super().__init__(**params)
        self.class_weight = class_weight
        self.focal_gamma = focal_gamma

    @property
    def classes_(self) -> np.ndarray:
        return self.targets_[0].class_names

    def _fit_targets(self, y: Any, weight: np.ndarray | None) -> list[Target]:
        if isinstance(y, pd.DataFrame):
            if self.class_weight is not None:
                raise ValueError(
                    "class_weight does not apply to multilabel y; pass sample_weight."
                )
            return [LabelSets(focal_gamma=self.focal_gamma).fit(y)]
        return [
            Labels(class_weight=self.class_weight, focal_gamma=self.focal_gamma).fit(y)
        ]

    def predict_proba(self, X: Any) -> np.ndarray:
        """Return probabilities, (n_rows, n_classes) in ``classes_`` order.

        Multilabel: (n_rows, n_labels), each label's probability.
        """
        return self.outputs_.proba(self.logits(X))

    def predict(self, X: Any) -> np.ndarray:
        """Return the most probable class of each row; multilabel: the 0/1 indicator."""
        return self.outputs_.predict(self.logits(X))

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        tags.classifier_tags.multi_label = True
        return tags
