"""Targets: class labels or values <-> what the model trains on, and back."""

from __future__ import annotations

import numpy as np
import torch
from sklearn.utils.multiclass import check_classification_targets

from widemm.training import Task


def fit_classes(y: np.ndarray) -> np.ndarray:
    """Return the sorted class labels of ``y``; a classifier needs two or more."""
    check_classification_targets(y)
    classes = np.unique(y)
    if len(classes) < 2:
        raise ValueError(
            f"y holds one class only ({classes[0]!r}); a classifier needs at least two."
        )
    return classes


def label_task(classes: np.ndarray) -> Task:
    """Return ``"binary"`` for two classes (one logit), else ``"multiclass"``."""
    return "binary" if len(classes) <= 2 else "multiclass"


def encode_labels(classes: np.ndarray, y: np.ndarray) -> torch.Tensor:
    """Class codes of ``y``: float 0/1 for two classes, int64 indices for more."""
    codes = np.minimum(np.searchsorted(classes, y), len(classes) - 1)
    unknown = classes[codes] != y
    if unknown.any():
        raise ValueError(f"y holds labels not seen in fit: {set(y[unknown])}.")
    binary = label_task(classes) == "binary"
    return torch.from_numpy(codes.astype(np.float32 if binary else np.int64))


def probabilities(logits: np.ndarray, task: Task) -> np.ndarray:
    """Class probabilities, (n_rows, n_classes) float64, from a model's logits.

    The activation runs in float64, so log-odds recovered from the probabilities
    are the logits to float32 precision.
    """
    z = torch.from_numpy(logits).double()
    if task == "binary":
        p = torch.sigmoid(z[:, 0]).numpy()
        return np.stack([1 - p, p], axis=1)
    return torch.softmax(z, dim=1).numpy()


def standardise(y: np.ndarray) -> tuple[float, float]:
    """Return the (mean, scale) that map ``y`` to mean 0, standard deviation 1.

    Computed on ``y / max|y|`` so that huge values (|y| ~ 1e200, whose squares
    overflow) give a finite scale.
    """
    peak = float(np.abs(y).max()) or 1.0
    unit = y / peak
    return float(unit.mean()) * peak, float(unit.std()) * peak or 1.0
