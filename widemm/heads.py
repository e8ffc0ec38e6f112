"""A head: one target's kind, block widths and loss options (no torch here).

The targets (:mod:`widemm.targets`) make one :class:`Head` per task; the
training objective (:mod:`widemm.training.objective`) computes its loss. The
numpy helpers the targets need to make a head (baselines, class weights,
temperature) live here too, so that predicting, with widemm.onnx_model
included, needs no torch.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy.special import expit, log_softmax

from widemm.scores import class_scores, label_set_scores, value_scores

Kind = Literal["binary", "multiclass", "multilabel", "regression"]
KINDS: tuple[Kind, ...] = ("binary", "multiclass", "multilabel", "regression")


@dataclass(frozen=True)
class Head:
    """One task: its name, kind, block widths and how its loss is formed.

    Parameters
    ----------
    name : str
        The task (a target column); prefixes its history columns.
    kind : {"binary", "multiclass", "multilabel", "regression"}
    n_targets : int
        Target columns: 1, or the labels (multilabel) or targets (regression).
    n_classes : int
        Multiclass: classes (logits); else unused.
    weight : float
        The head's share of the total loss (fixed weighting).
    class_weight : tuple of float, optional
        Binary and multiclass: a weight per class, multiplying its rows' loss.
    focal_gamma : float, optional
        Classification: focal loss, ``(1 - p_true) ** gamma`` times cross-entropy.
    quantiles : tuple of float, optional
        Regression: predict these quantiles of each target (pinball loss).
    known : float
        Share of the training rows whose target is known for this head.
    baseline : float
        Loss per row of the best constant prediction on the training rows.
    """

    name: str
    kind: Kind
    n_targets: int = 1
    n_classes: int = 2
    weight: float = 1.0
    class_weight: tuple[float, ...] | None = None
    focal_gamma: float | None = None
    quantiles: tuple[float, ...] | None = None
    known: float = 1.0
    baseline: float = 1.0

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"Head kind must be one of {KINDS}, got {self.kind!r}.")

    @property
    def n_outputs(self) -> int:
        """Logits (or values) the model gives this head."""
        if self.kind == "multiclass":
            return self.n_classes
        return self.n_targets * len(self.quantiles or (None,))

    def metrics(self, logits: np.ndarray, target: np.ndarray) -> dict[str, float]:
        """Score the head's block of logits on its known rows (see ``widemm.scores``).

        On the values as the model sees them (a standardised regression target
        stays standardised): a model trained by its estimator is scored through
        its targets instead, in the target's units.
        """
        known = ~np.isnan(target).any(axis=1)
        z, y = logits[known].astype(np.float64), target[known]
        if self.kind == "binary":
            p = expit(z[:, 0])
            return class_scores(np.stack([1 - p, p], axis=1), y[:, 0])
        if self.kind == "multiclass":
            return class_scores(np.exp(log_softmax(z, axis=1)), y[:, 0])
        if self.kind == "multilabel":
            return label_set_scores(expit(z), y)
        if self.quantiles is not None:  # the median
            z = z.reshape(len(z), self.n_targets, -1)[..., self.quantiles.index(0.5)]
        return value_scores(z.ravel(), y.ravel())


def entropy(p: np.ndarray) -> float:
    """Mean binary entropy (nats) of probabilities ``p``; at least 1e-3."""
    p = np.clip(p, 1e-6, 1 - 1e-6)
    return max(float(np.mean(-(p * np.log(p) + (1 - p) * np.log(1 - p)))), 1e-3)


def balanced_weights(codes: np.ndarray, n_classes: int) -> tuple[float, ...]:
    """scikit-learn's "balanced" class weights: n_rows / (n_classes * count)."""
    counts = np.bincount(codes.astype(np.int64), minlength=n_classes)
    return tuple(float(len(codes) / (n_classes * max(c, 1))) for c in counts)


def class_weights(
    class_weight: str | Mapping[object, float] | None,
    classes: np.ndarray,
    codes: np.ndarray,
) -> tuple[float, ...] | None:
    """Resolve a ``class_weight`` setting to a weight per class (or None)."""
    if class_weight is None:
        return None
    if class_weight == "balanced":
        return balanced_weights(codes, len(classes))
    if not isinstance(class_weight, Mapping):
        raise ValueError(
            f"class_weight must be 'balanced', a dict or None, got {class_weight!r}."
        )
    unknown = set(class_weight) - set(classes.tolist())
    if unknown:
        raise ValueError(
            f"class_weight names classes not in y: {sorted(map(str, unknown))}; the "
            f"classes are {classes.tolist()}."
        )
    return tuple(float(class_weight.get(c, 1.0)) for c in classes.tolist())


def fit_temperature(logits: np.ndarray, y: np.ndarray, kind: str) -> float:
    """Fit temperature scaling: the T minimising the NLL of ``softmax(logits / T)``.

    Rows (or labels) with unknown targets are left out; T = 1 without any.
    """
    from scipy.optimize import minimize_scalar

    z, t = logits.astype(np.float64), y.astype(np.float64)
    known = ~np.isnan(t)
    if kind == "multiclass":
        rows = known[:, 0]
        z, codes = z[rows], t[rows, 0].astype(np.int64)
        if not len(codes):
            return 1.0

        def nll(log_t: float) -> float:
            logp = log_softmax(z / np.exp(log_t), axis=1)
            return float(-logp[np.arange(len(codes)), codes].mean())
    else:
        if not known.any():
            return 1.0
        z, t = z[known], t[known]

        def nll(log_t: float) -> float:
            s = z / np.exp(log_t)
            return float(np.mean(np.logaddexp(0.0, s) - t * s))

    best = minimize_scalar(nll, bounds=(-3.0, 3.0), method="bounded")
    return float(np.exp(best.x))
