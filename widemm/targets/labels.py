"""Class labels: one per row (:class:`Labels`) or several (:class:`LabelSets`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator
from sklearn.utils.multiclass import check_classification_targets

from widemm.heads import Head, Kind, class_weights, entropy, fit_temperature
from widemm.scores import class_scores, label_set_scores
from widemm.targets.common import (
    _index,
    _missing,
    _refuse_missing,
    label_kind,
    probabilities,
)
from widemm.validation import plain


class Labels(BaseEstimator):
    """Class labels in one column: binary (one logit) or multiclass.

    Parameters
    ----------
    name : str
        The task's name (its target column).
    class_weight : "balanced", dict or None
        Weights per class in the loss; ``"balanced"``: inverse class frequency.
    focal_gamma : float, optional
        Focal loss instead of cross-entropy.
    allow_missing : bool
        Rows with a missing label are masked out of this task's loss.
    weight : float
        The task's share of a multi-task loss.
    """

    def __init__(
        self,
        name: str = "y",
        class_weight: str | Mapping[Any, float] | None = None,
        focal_gamma: float | None = None,
        allow_missing: bool = False,
        weight: float = 1.0,
    ) -> None:
        self.name = name
        self.class_weight = class_weight
        self.focal_gamma = focal_gamma
        self.allow_missing = allow_missing
        self.weight = weight

    def fit(self, y: Any) -> Labels:
        values, known = self._known(y)
        # as a plain array: numbers with missing values come as objects, which
        # scikit-learn reads as labels of an "unknown" type
        check_classification_targets(np.asarray(values[known].tolist()))
        self.classes_ = np.unique(values[known])
        if len(self.classes_) < 2:
            one = plain(self.classes_[0]) if len(self.classes_) else "none"
            raise ValueError(
                f"Target {self.name!r} holds one class only ({one}); a classifier "
                "needs at least two."
            )
        codes = np.searchsorted(self.classes_, values[known])
        self.class_weights_ = class_weights(self.class_weight, self.classes_, codes)
        self.known_ = float(known.mean())
        prior = np.bincount(codes, minlength=len(self.classes_)) / len(codes)
        if len(prior) == 2:
            self.baseline_ = entropy(prior[1:])
        else:
            self.baseline_ = max(float(-(prior * np.log(prior + 1e-12)).sum()), 1e-3)
        self.temperature_ = 1.0
        return self

    def _known(self, y: Any) -> tuple[np.ndarray, np.ndarray]:
        values = np.asarray(y, dtype=object if not hasattr(y, "dtype") else None)
        values = values.reshape(len(values))
        missing = _missing(values)
        if not self.allow_missing:
            _refuse_missing(self.name, missing, _index(y), values)
        if values.dtype.kind in "fiub" and not missing.any():
            return values, ~missing
        return values.astype(object), ~missing

    @property
    def kind(self) -> Kind:
        return label_kind(self.classes_)

    @property
    def class_names(self) -> np.ndarray:
        """The names of its probability columns: the classes."""
        return self.classes_

    @property
    def n_outputs(self) -> int:
        """Logits: 1 for two classes, else one per class."""
        return 1 if self.kind == "binary" else len(self.classes_)

    n_columns = 1  # target columns it encodes to

    def head(self) -> Head:
        return Head(
            self.name,
            self.kind,
            1,
            len(self.classes_),
            self.weight,
            class_weight=self.class_weights_,
            focal_gamma=self.focal_gamma,
            known=self.known_,
            baseline=self.baseline_,
        )

    def encode(self, y: Any) -> np.ndarray:
        """Class codes, (n_rows, 1) float32, NaN where the label is missing."""
        values, known = self._known(y)
        codes = np.full(len(values), np.nan, dtype=np.float32)
        found = np.minimum(
            np.searchsorted(self.classes_, values[known]), len(self.classes_) - 1
        )
        unknown = self.classes_[found] != values[known]
        if unknown.any():
            row = int(np.flatnonzero(known)[np.flatnonzero(unknown)[0]])
            raise ValueError(
                f"Target {self.name!r} holds labels not seen in fit: "
                f"{sorted(map(plain, set(values[known][unknown])))} (first at row "
                f"{plain(_index(y)[row])})."
            )
        codes[known] = found
        return codes[:, None]

    def proba(self, block: np.ndarray) -> np.ndarray:
        return probabilities(block, self.kind, self.temperature_)

    def calibrate(self, block: np.ndarray, y: np.ndarray) -> None:
        """Fit ``temperature_`` on validation logits and encoded labels."""
        self.temperature_ = fit_temperature(block, y, self.kind)

    def predict(self, block: np.ndarray) -> np.ndarray:
        return self.classes_[self.proba(block).argmax(axis=1)]

    def scores(self, block: np.ndarray, codes: np.ndarray) -> dict[str, float]:
        """Score logits on the rows whose code is known (see ``widemm.scores``)."""
        known = ~np.isnan(codes[:, 0])
        return class_scores(self.proba(block[known]), codes[known, 0])


class LabelSets(BaseEstimator):
    """Several labels per row (multilabel): one logit per label.

    Parameters
    ----------
    name : str
    sep : str
        Separator of labels in string cells (``"Biography, Comedy"``); the
        labels are stripped of spaces.
    focal_gamma : float, optional
    allow_missing : bool
        A missing cell (or NaN in an indicator) masks that row (or entry).
    weight : float

    The target may be a 0/1 indicator (array or DataFrame; predictions are an
    indicator too) or a column of lists or delimited strings (predictions in the
    same form).
    """

    def __init__(
        self,
        name: str = "y",
        sep: str = ",",
        focal_gamma: float | None = None,
        allow_missing: bool = False,
        weight: float = 1.0,
    ) -> None:
        self.name = name
        self.sep = sep
        self.focal_gamma = focal_gamma
        self.allow_missing = allow_missing
        self.weight = weight

    def fit(self, y: Any) -> LabelSets:
        if np.ndim(y) == 2:
            self.form_ = "indicator"
            self.labels_ = (
                np.asarray(y.columns, dtype=object)
                if isinstance(y, pd.DataFrame)
                else np.arange(np.shape(y)[1])
            )
        else:
            series = pd.Series(np.asarray(y, dtype=object))
            sample = series.dropna()
            self.form_ = (
                "string" if sample.map(lambda v: isinstance(v, str)).all() else "list"
            )
            labels = set().union(*(s for s in self._sets(series) if s is not None))
            self.labels_ = np.array(sorted(labels, key=str), dtype=object)
        indicator = self.encode(y)
        self.known_ = float((~np.isnan(indicator)).mean())
        self.baseline_ = entropy(np.nanmean(indicator, axis=0))
        self.temperature_ = 1.0
        return self

    def _sets(self, cells: pd.Series) -> list[Any]:
        """Each cell's labels (a set), or None where missing."""
        out: list[Any] = []
        for cell in cells:
            if isinstance(cell, str):
                out.append({p.strip() for p in cell.split(self.sep) if p.strip()})
            elif isinstance(cell, list | tuple | set | frozenset | np.ndarray):
                out.append(set(cell))
            else:
                out.append(None if pd.isna(cell) else {cell})
        return out

    @property
    def kind(self) -> Kind:
        return "multilabel"

    @property
    def class_names(self) -> np.ndarray:
        """The names of its probability columns: the labels."""
        return self.labels_

    @property
    def n_outputs(self) -> int:
        """Logits (and target columns): one per label."""
        return len(self.labels_)

    n_columns = n_outputs

    def head(self) -> Head:
        return Head(
            self.name,
            "multilabel",
            len(self.labels_),
            weight=self.weight,
            focal_gamma=self.focal_gamma,
            known=self.known_,
            baseline=self.baseline_,
        )

    def encode(self, y: Any) -> np.ndarray:
        """Return the 0/1 indicator, (n_rows, n_labels) float32, NaN where unknown."""
        index = _index(y)
        if self.form_ == "indicator":
            if np.ndim(y) != 2 or np.shape(y)[1] != len(self.labels_):
                raise ValueError(
                    f"Target {self.name!r} was fitted on a {len(self.labels_)}-label "
                    f"indicator; got shape {np.shape(y)}."
                )
            try:
                values = np.asarray(y, dtype=np.float64)
            except (TypeError, ValueError) as err:
                raise ValueError(
                    f"A 2-D y is a multilabel 0/1 indicator (a column per label); this "
                    f"one holds other values: {err}. For several targets of any kind, "
                    "use WideDeepMultiTask."
                ) from None
            bad = ~(np.isin(values, (0, 1)) | np.isnan(values))
            missing = np.isnan(values).any(1)
            if bad.any() or (missing.any() and not self.allow_missing):
                row = int(np.flatnonzero(bad.any(1) | missing)[0])
                raise ValueError(
                    f"Target {self.name!r} must be a 0/1 indicator; row "
                    f"{plain(index[row])} holds {values[row].tolist()}."
                )
            return values.astype(np.float32)
        sets = self._sets(pd.Series(np.asarray(y, dtype=object)))
        missing = np.array([s is None for s in sets])
        if not self.allow_missing:
            _refuse_missing(self.name, missing, index, np.asarray(y, dtype=object))
        out = np.zeros((len(sets), len(self.labels_)), dtype=np.float32)
        out[missing] = np.nan
        position = {label: j for j, label in enumerate(self.labels_)}
        for i, labels in enumerate(sets):
            for label in labels or ():
                if label not in position:
                    raise ValueError(
                        f"Target {self.name!r} holds label {label!r} at row "
                        f"{plain(index[i])}, not seen in fit."
                    )
                out[i, position[label]] = 1
        return out

    def proba(self, block: np.ndarray) -> np.ndarray:
        """Each label's probability, (n_rows, n_labels)."""
        return probabilities(block, "multilabel", self.temperature_)

    def calibrate(self, block: np.ndarray, y: np.ndarray) -> None:
        """Fit ``temperature_`` on validation logits and encoded labels."""
        self.temperature_ = fit_temperature(block, y, self.kind)

    def predict_indicator(self, block: np.ndarray) -> np.ndarray:
        """Return the 0/1 indicator of the labels with probability over 0.5."""
        return (self.proba(block) > 0.5).astype(np.int64)

    def predict(self, block: np.ndarray) -> Any:
        """Labels with probability over 0.5, in the form of the fit target."""
        indicator = self.predict_indicator(block)
        if self.form_ == "indicator":
            return indicator
        rows = [self.labels_[row.astype(bool)].tolist() for row in indicator]
        if self.form_ == "list":
            return np.array([tuple(r) for r in rows] + [None], dtype=object)[:-1]
        joiner = self.sep if self.sep.endswith(" ") else self.sep + " "
        return np.array([joiner.join(r) for r in rows], dtype=object)

    def scores(self, block: np.ndarray, codes: np.ndarray) -> dict[str, float]:
        """Score logits on the rows whose labels are known (see ``widemm.scores``)."""
        known = ~np.isnan(codes).any(axis=1)
        return label_set_scores(self.proba(block[known]), codes[known])


def split_labels(cells: Any, sep: str = ",") -> pd.DataFrame:
    """Turn a column of delimited labels (or lists) into a 0/1 indicator frame.

    ``"Biography, Comedy, Drama"`` -> columns Biography, Comedy, Drama set to 1;
    a missing cell -> a row of NaN. :func:`join_labels` is the inverse.
    """
    target = LabelSets(sep=sep, allow_missing=True).fit(cells)
    return pd.DataFrame(
        target.encode(cells), index=_index(cells), columns=list(target.labels_)
    )


def join_labels(indicator: Any, sep: str = ", ") -> pd.Series:
    """Turn a 0/1 indicator frame (columns = labels) into delimited strings."""
    frame = pd.DataFrame(indicator)
    labels = np.asarray(frame.columns, dtype=object)
    values = frame.to_numpy()
    return pd.Series(
        [sep.join(map(str, labels[row == 1])) for row in values], index=frame.index
    )
