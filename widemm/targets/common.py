"""What every target shares: probabilities, standardising, missing-value errors."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from scipy.special import expit, softmax

from widemm.heads import Kind
from widemm.validation import plain


def label_kind(classes: np.ndarray) -> Kind:
    """Return ``"binary"`` for two classes (one logit), else ``"multiclass"``."""
    return "binary" if len(classes) <= 2 else "multiclass"


def probabilities(logits: np.ndarray, kind: Kind, temperature: float = 1.0) -> Any:
    """Probabilities (float64) from a block of logits divided by ``temperature``.

    Binary: (n_rows, 2); multiclass: softmax over the classes; multilabel: a
    sigmoid per label. The activation runs in float64, so log-odds recovered
    from the probabilities are the logits to float32 precision.
    """
    z = np.asarray(logits, dtype=np.float64) / temperature
    if kind == "binary":
        p = expit(z[:, 0])
        return np.stack([1 - p, p], axis=1)
    if kind == "multilabel":
        return expit(z)
    return softmax(z, axis=1)


def _missing(values: np.ndarray) -> np.ndarray:
    if values.dtype.kind == "f":
        return ~np.isfinite(values)
    return np.asarray(pd.isna(values), dtype=bool)


def _index(y: Any) -> pd.Index:
    return y.index if isinstance(y, pd.Series | pd.DataFrame) else pd.RangeIndex(len(y))


def _refuse_missing(
    name: str, missing: np.ndarray, index: pd.Index, cells: Any
) -> None:
    if missing.any():
        row = int(np.flatnonzero(missing)[0])
        raise ValueError(
            f"Target {name!r} holds {int(missing.sum())} NaN/inf value(s), the first "
            f"at row {plain(index[row])} ({plain(cells[row])}). Drop those rows or "
            "fill the target."
        )


def standardise(y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per column of ``y`` (n_rows, k): the (mean, scale) mapping it to mean 0, sd 1.

    NaN entries are ignored. Computed on ``y / max|y|`` so that huge values
    (|y| ~ 1e200, whose squares overflow) give a finite scale.
    """
    peak = np.nanmax(np.abs(y), axis=0)
    peak = np.where((peak > 0) & np.isfinite(peak), peak, 1.0)
    unit = y / peak
    mean, std = np.nanmean(unit, axis=0) * peak, np.nanstd(unit, axis=0) * peak
    return mean, np.where(std > 0, std, 1.0)
