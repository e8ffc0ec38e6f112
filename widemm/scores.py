"""Scores of predictions against known targets, under one naming for all.

- Classes (binary, multiclass): ``accuracy``, ``roc_auc`` (the mean of each
  class's one-vs-rest AUC for several classes), ``log_loss``.
- Label sets (multilabel): ``roc_auc_micro``, ``roc_auc_macro`` (over the labels
  that take both values), ``subset_accuracy`` (every label right).
- Values (regression): ``r2``, ``rmse``, ``mae``.

A score the rows cannot give (one class only, a constant target's R²) is left
out. With several targets,
each score takes its target's name as a prefix (``Genre_roc_auc_micro``); the
training history prefixes validation scores with ``valid_``. Callers pass the
rows whose target is known.
"""

from __future__ import annotations

import numpy as np
from sklearn import metrics


def class_scores(proba: np.ndarray, codes: np.ndarray) -> dict[str, float]:
    """Score class probabilities (n_rows, n_classes) against class indices."""
    if not len(codes):
        return {}
    codes = codes.astype(np.int64)
    n_classes = proba.shape[1]
    out = {"accuracy": float((proba.argmax(1) == codes).mean())}
    present = np.unique(codes)
    if len(present) > 1:
        aucs = [metrics.roc_auc_score(codes == c, proba[:, c]) for c in present]
        out["roc_auc"] = float(aucs[-1] if n_classes == 2 else np.mean(aucs))
    out["log_loss"] = float(metrics.log_loss(codes, proba, labels=range(n_classes)))
    return out


def label_set_scores(proba: np.ndarray, indicator: np.ndarray) -> dict[str, float]:
    """Score label probabilities (n_rows, n_labels) against a 0/1 indicator."""
    if not len(indicator):
        return {}
    out = {}
    both = (indicator.min(0) == 0) & (indicator.max(0) == 1)
    if both.any():  # micro: every (row, label) pooled; macro: labels with both
        out["roc_auc_micro"] = float(
            metrics.roc_auc_score(indicator.ravel(), proba.ravel())
        )
        out["roc_auc_macro"] = float(
            metrics.roc_auc_score(indicator[:, both], proba[:, both], average="macro")
        )
    out["subset_accuracy"] = float(((proba > 0.5) == indicator).all(axis=1).mean())
    return out


def value_scores(predicted: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    """Score predicted values against true ones (both of shape (n_rows,))."""
    if not len(truth):
        return {}
    error, spread = predicted - truth, truth - truth.mean()
    # Squares of values divided by the largest: finite for |values| ~ 1e200 too.
    peak = max(float(np.abs(error).max()), float(np.abs(spread).max()), 1e-300)
    squared, total = np.sum((error / peak) ** 2), np.sum((spread / peak) ** 2)
    out = {"r2": float(1 - squared / total)} if total > 0 else {}
    out["rmse"] = float(peak * np.sqrt(squared / len(truth)))
    out["mae"] = float(np.abs(error).mean())
    return out
