"""What training minimises: one head per task over one block of the logits.

A model's logits are the heads' outputs side by side and its target the heads'
target columns side by side (float32, NaN where a value is unknown). Each
:class:`Head` says how its block is scored; an :class:`Objective` sums the heads'
losses, weighted, over the rows (the Trainer divides by the rows' total weight).

Kinds of head and their losses (per row, averaged over the head's columns):

- ``"binary"``: one logit, target 0/1; binary cross-entropy.
- ``"multiclass"``: one logit per class, target the class index; cross-entropy.
- ``"multilabel"``: one logit per label, target 0/1 per label; binary
  cross-entropy per label.
- ``"regression"``: one output per target column (squared error), or with
  ``quantiles`` one per (column, quantile), column-major (pinball loss).

A row whose target is unknown (NaN) for a head adds nothing to that head's loss;
the head's loss is divided by the share of training rows that know it
(``known``), so a target missing for most rows still weighs as much as the others.
With several heads, each head's loss is also divided by its ``baseline``, the loss
of the best constant prediction (the prior's entropy; 1 for a standardised
target): losses then measure how far each task is from knowing nothing, on one
scale, so no task dominates the shared layers or early stopping by its units.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
from torch import Tensor, nn
from torch.nn import functional as F

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

    def losses(self, logits: Tensor, target: Tensor) -> Tensor:
        """Per-row loss, shape (n_rows,), 0 for rows whose target is unknown."""
        known = ~target.isnan()
        y = target.nan_to_num(0.0)
        if self.kind == "multiclass":
            codes = y[:, 0].long()
            loss = F.cross_entropy(logits, codes, reduction="none")
            loss = self._focal(loss) * self._class_weight(codes)
            return loss * known[:, 0]
        if self.kind == "regression":
            if self.quantiles is None:
                return _mean((logits - y) ** 2, known)
            q = torch.tensor(self.quantiles, dtype=logits.dtype, device=logits.device)
            pred = logits.view(len(logits), self.n_targets, len(q))
            error = y.unsqueeze(-1) - pred
            pinball = torch.maximum(q * error, (q - 1) * error).mean(-1)
            return _mean(pinball, known)
        loss = F.binary_cross_entropy_with_logits(logits, y, reduction="none")
        loss = self._focal(loss)
        if self.kind == "binary":
            loss = loss * self._class_weight(y[:, 0].long()).unsqueeze(1)
        return _mean(loss, known)

    def _focal(self, cross_entropy: Tensor) -> Tensor:
        if not self.focal_gamma:
            return cross_entropy
        p_true = torch.exp(-cross_entropy)
        return (1 - p_true) ** self.focal_gamma * cross_entropy

    def _class_weight(self, codes: Tensor) -> Tensor:
        """Each row's class weight, shape (n_rows,)."""
        if self.class_weight is None:
            return torch.ones(len(codes), device=codes.device)
        return torch.tensor(self.class_weight, device=codes.device)[codes]

    def metrics(self, logits: Tensor, target: Tensor) -> dict[str, float]:
        """Return the head's validation metric on its known rows (NaN without any)."""
        from sklearn.metrics import roc_auc_score

        y, z = target.double().numpy(), logits.double().numpy()
        if self.kind == "multiclass":
            keep = ~np.isnan(y[:, 0])
            hit = z[keep].argmax(1) == y[keep, 0]
            return {"accuracy": float(hit.mean()) if keep.any() else np.nan}
        if self.kind == "regression":
            if self.quantiles is not None:
                z = z.reshape(len(z), self.n_targets, -1).mean(-1)
            error = (z - y)[~np.isnan(y)]
            return {"rmse": float(np.sqrt(np.mean(error**2))) if len(error) else np.nan}
        aucs = []
        for j in range(self.n_targets):
            keep = ~np.isnan(y[:, j])
            if len(np.unique(y[keep, j])) == 2:
                aucs.append(roc_auc_score(y[keep, j], z[keep, j]))
        return {"auc": float(np.mean(aucs)) if aucs else np.nan}


def _mean(loss: Tensor, known: Tensor) -> Tensor:
    """Mean of each row's known entries (0 for a row with none)."""
    return (loss * known).sum(1) / known.sum(1).clamp(min=1)


Weighting = Literal["fixed", "uncertainty"]


class Objective(nn.Module):
    """The heads' weighted losses summed over rows, and their metrics.

    Parameters
    ----------
    heads : sequence of Head
        In the order of the logit and target blocks.
    weighting : {"fixed", "uncertainty"}
        ``"fixed"``: each head's loss times its ``weight``. ``"uncertainty"``:
        learned homoscedastic-uncertainty weights (Kendall et al., 2018): head
        ``t`` adds ``exp(-s_t) * loss_t + s_t`` per row, with ``s_t`` trained
        with the model (``log_vars``), so noisier tasks weigh less.
    """

    def __init__(self, heads: Sequence[Head], weighting: Weighting = "fixed") -> None:
        super().__init__()
        if weighting not in ("fixed", "uncertainty"):
            raise ValueError(
                f"weighting must be 'fixed' or 'uncertainty', got {weighting!r}."
            )
        names = [h.name for h in heads]
        if len(set(names)) != len(names):
            raise ValueError(f"Head names must be unique, got {names}.")
        self.heads, self.weighting = tuple(heads), weighting
        self.log_vars = (
            nn.Parameter(torch.zeros(len(heads)))
            if weighting == "uncertainty"
            else None
        )

    @classmethod
    def of(cls, task: str | Objective) -> Objective:
        """Return an objective, or a one-head one for a kind name (``"binary"``...)."""
        if isinstance(task, Objective):
            return task
        return cls([Head("y", task)])  # type: ignore[arg-type]

    @property
    def n_outputs(self) -> int:
        return sum(h.n_outputs for h in self.heads)

    def blocks(
        self, logits: Tensor, target: Tensor
    ) -> list[tuple[Head, Tensor, Tensor]]:
        """Each head with its block of the logits and of the target."""
        if len(self.heads) == 1:  # all of them (a multiclass head of any width)
            return [(self.heads[0], logits, target)]
        out, o, t = [], 0, 0
        for head in self.heads:
            out.append(
                (
                    head,
                    logits[:, o : o + head.n_outputs],
                    target[:, t : t + head.n_targets],
                )
            )
            o, t = o + head.n_outputs, t + head.n_targets
        return out

    def forward(
        self, logits: Tensor, target: Tensor, weight: Tensor | None = None
    ) -> Tensor:
        """Return the weighted sum over rows of the heads' losses (a scalar).

        Logits of shape (B, k, n_outputs), an ensemble's k members, give the
        mean of the members' losses: each member learns on its own.
        """
        if target.dim() == 1:
            target = target.unsqueeze(1)
        if logits.dim() == 3:
            k = logits.shape[1]
            weight = None if weight is None else weight.repeat_interleave(k) / k
            if weight is None:
                weight = logits.new_full((logits.shape[0] * k,), 1 / k)
            logits, target = logits.flatten(0, 1), target.repeat_interleave(k, 0)
        target = target.float()
        total = logits.new_zeros(())
        rows = logits.new_ones(len(logits)) if weight is None else weight
        several = len(self.heads) > 1
        for i, (head, z, y) in enumerate(self.blocks(logits, target)):
            loss = (head.losses(z, y) * rows).sum() / head.known
            if several:
                loss = loss / head.baseline
            if self.log_vars is None:
                total = total + head.weight * loss
            else:
                s = self.log_vars[i]
                total = total + torch.exp(-s) * loss + s * rows.sum()
        return total

    def metrics(self, logits: Tensor, target: Tensor) -> dict[str, float]:
        """Return ``valid_<metric>`` (per head: ``valid_<name>_<metric>``)."""
        if target.dim() == 1:
            target = target.unsqueeze(1)
        out: dict[str, float] = {}
        for head, z, y in self.blocks(logits, target.float()):
            prefix = "valid_" if len(self.heads) == 1 else f"valid_{head.name}_"
            out.update({prefix + k: v for k, v in head.metrics(z, y).items()})
        return out

    def task_weights(self) -> dict[str, float]:
        """Each head's current weight (learned ones: ``exp(-s_t)``)."""
        if self.log_vars is None:
            return {h.name: h.weight for h in self.heads}
        learned = torch.exp(-self.log_vars.detach()).tolist()
        return dict(zip([h.name for h in self.heads], learned, strict=True))


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

    z = torch.from_numpy(logits).double()
    t = torch.from_numpy(y).double()
    known = ~t.isnan()
    if kind == "multiclass":
        rows = known[:, 0]
        z, codes = z[rows], t[rows, 0].long()
        if not len(codes):
            return 1.0

        def nll(log_t: float) -> float:
            return float(F.cross_entropy(z / np.exp(log_t), codes))
    else:
        if not known.any():
            return 1.0
        z, t = z[known], t[known]

        def nll(log_t: float) -> float:
            return float(F.binary_cross_entropy_with_logits(z / np.exp(log_t), t))

    best = minimize_scalar(nll, bounds=(-3.0, 3.0), method="bounded")
    return float(np.exp(best.x))
