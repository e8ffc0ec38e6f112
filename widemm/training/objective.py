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

from collections.abc import Callable, Mapping, Sequence
from typing import Literal, TypeVar, get_args

import numpy as np
import torch
from torch import Tensor, nn
from torch.nn import functional as F

from widemm.heads import Head
from widemm.training.famo import FAMO
from widemm.training.gradnorm import GradNorm
from widemm.training.nash import NashMTL

Scorer = Callable[[np.ndarray, np.ndarray], dict[str, float]]
T = TypeVar("T", Tensor, np.ndarray)


def head_losses(head: Head, logits: Tensor, target: Tensor) -> Tensor:
    """Per-row loss of ``head``, shape (n_rows,), 0 where the target is unknown."""
    known = ~target.isnan()
    y = target.nan_to_num(0.0)
    if head.kind == "multiclass":
        codes = y[:, 0].long()
        loss = F.cross_entropy(logits, codes, reduction="none")
        loss = _focal(head, loss) * _class_weight(head, codes)
        return loss * known[:, 0]
    if head.kind == "regression":
        if head.quantiles is None:
            return _mean((logits - y) ** 2, known)
        q = torch.tensor(head.quantiles, dtype=logits.dtype, device=logits.device)
        pred = logits.view(len(logits), head.n_targets, len(q))
        error = y.unsqueeze(-1) - pred
        pinball = torch.maximum(q * error, (q - 1) * error).mean(-1)
        return _mean(pinball, known)
    loss = F.binary_cross_entropy_with_logits(logits, y, reduction="none")
    loss = _focal(head, loss)
    if head.kind == "binary":
        loss = loss * _class_weight(head, y[:, 0].long()).unsqueeze(1)
    return _mean(loss, known)


def _focal(head: Head, cross_entropy: Tensor) -> Tensor:
    if not head.focal_gamma:
        return cross_entropy
    p_true = torch.exp(-cross_entropy)
    return (1 - p_true) ** head.focal_gamma * cross_entropy


def _class_weight(head: Head, codes: Tensor) -> Tensor:
    """Each row's class weight, shape (n_rows,)."""
    if head.class_weight is None:
        return torch.ones(len(codes), device=codes.device)
    return torch.tensor(head.class_weight, device=codes.device)[codes]


def _mean(loss: Tensor, known: Tensor) -> Tensor:
    """Mean of each row's known entries (0 for a row with none)."""
    return (loss * known).sum(1) / known.sum(1).clamp(min=1)


Weighting = Literal["fixed", "uncertainty", "famo", "nash", "gradnorm"]
WEIGHTINGS = get_args(Weighting)


class Objective(nn.Module):
    """The heads' weighted losses summed over rows, and their metrics.

    Parameters
    ----------
    heads : sequence of Head
        In the order of the logit and target blocks.
    weighting : {"fixed", "uncertainty", "famo", "nash", "gradnorm"}
        ``"fixed"``: each head's loss times its ``weight``. ``"uncertainty"``:
        learned homoscedastic-uncertainty weights (Kendall et al., 2018): head
        ``t`` adds ``exp(-s_t) * loss_t + s_t`` per row, with ``s_t`` trained
        with the model (``log_vars``), so noisier tasks weigh less. ``"famo"``:
        training steps minimise :class:`~widemm.training.famo.FAMO`'s loss
        (``famo``, see :meth:`step_loss`). ``"nash"``: each step weighs the
        tasks by :class:`~widemm.training.nash.NashMTL` (``nash``) from their
        gradients at the representation the heads share; ``"gradnorm"``, by
        :class:`~widemm.training.gradnorm.GradNorm` (``gradnorm``) from those
        gradients' norms and how far each task's loss lags. With any of the
        last three, the loss returned, reported and early-stopped on is the
        fixed weights'.
    scorer : callable, optional
        ``(logits, target) -> {score: value}`` (numpy arrays) for the validation
        scores; by default each head scores its block (see ``Head.metrics``).
    """

    def __init__(
        self,
        heads: Sequence[Head],
        weighting: Weighting = "fixed",
        scorer: Scorer | None = None,
    ) -> None:
        super().__init__()
        if weighting not in WEIGHTINGS:
            raise ValueError(
                f"weighting must be one of {WEIGHTINGS}, got {weighting!r}."
            )
        names = [h.name for h in heads]
        if len(set(names)) != len(names):
            raise ValueError(f"Head names must be unique, got {names}.")
        self.heads, self.weighting, self.scorer = tuple(heads), weighting, scorer
        self.log_vars = (
            nn.Parameter(torch.zeros(len(heads)))
            if weighting == "uncertainty"
            else None
        )
        fixed = [h.weight for h in heads]
        self.famo = FAMO(fixed) if weighting == "famo" else None
        self.nash = NashMTL(fixed) if weighting == "nash" else None
        self.gradnorm = GradNorm(fixed) if weighting == "gradnorm" else None

    @property
    def needs_representation(self) -> bool:
        """Whether training steps take the tasks' gradients at the fusion output."""
        return self.nash is not None or self.gradnorm is not None

    @classmethod
    def of(cls, task: str | Objective) -> Objective:
        """Return an objective, or a one-head one for a kind name (``"binary"``...)."""
        if isinstance(task, Objective):
            return task
        return cls([Head("y", task)])  # type: ignore[arg-type]

    @property
    def n_outputs(self) -> int:
        return sum(h.n_outputs for h in self.heads)

    def blocks(self, logits: T, target: T) -> list[tuple[Head, T, T]]:
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
        logits, target, rows = _flat(logits, target, weight)
        total = logits.new_zeros(())
        for i, (head, loss) in enumerate(
            zip(self.heads, self.losses(logits, target, rows), strict=True)
        ):
            if self.log_vars is None:
                total = total + head.weight * loss
            else:
                s = self.log_vars[i]
                total = total + torch.exp(-s) * loss + s * rows.sum()
        return total

    def step_loss(
        self,
        logits: Tensor,
        target: Tensor,
        weight: Tensor | None = None,
        all_reduce_: Callable[[Tensor], None] = lambda tensor: None,
        shared: Tensor | None = None,
    ) -> tuple[Tensor, Tensor]:
        """Return a training step's loss to minimise and the one to report.

        The second is ``forward``'s. They differ with ``"famo"`` weighting: the
        first is then the heads' loss sums times FAMO's coefficients of the
        heads' mean losses over all ranks' rows (``all_reduce_`` sums a tensor
        over the ranks in place), whose gradient is FAMO's; with ``"nash"``
        or ``"gradnorm"``, the loss sums times Nash-MTL's or GradNorm's weights
        from their gradients at ``shared``, the representation the heads read
        (which the logits must come from).
        """
        if self.famo is None and not self.needs_representation:
            loss = self(logits, target, weight)
            return loss, loss
        sums, total = self.loss_sums(logits, target, weight)
        reported = sums @ sums.new_tensor([h.weight for h in self.heads])
        if self.famo is not None:
            self._before = _global_means(sums.detach(), total, all_reduce_)
            return sums @ self.famo.coefficients(self._before), reported
        if shared is None:
            raise ValueError(
                f"{self.weighting!r} weighting needs the representation the heads "
                "read (shared=...), to take each task's gradient there."
            )
        if self.nash is not None:
            coefficients = self.nash.coefficients(sums, shared, all_reduce_)
        else:
            assert self.gradnorm is not None
            means = _global_means(sums.detach(), total, all_reduce_)
            coefficients = self.gradnorm.coefficients(sums, means, shared, all_reduce_)
        return sums @ coefficients, reported

    @torch.no_grad()
    def balance(
        self,
        after: Tensor,
        batch: Mapping[str, Tensor],
        all_reduce_: Callable[[Tensor], None],
    ) -> None:
        """FAMO: move the task weights by a batch's losses before and after a step.

        ``after``: the logits of the batch of the last :meth:`step_loss`, once
        the step is taken. ``all_reduce_`` sums a tensor over the ranks in
        place, so every rank moves its weights alike.
        """
        if self.famo is None:
            return
        sums, rows = self.loss_sums(after.float(), batch["target"], batch.get("weight"))
        self.famo.update(self._before, _global_means(sums, rows, all_reduce_))

    def loss_sums(
        self, logits: Tensor, target: Tensor, weight: Tensor | None = None
    ) -> tuple[Tensor, Tensor]:
        """Each head's loss summed over rows (n_heads,), and the rows' total weight."""
        logits, target, rows = _flat(logits, target, weight)
        return torch.stack(self.losses(logits, target, rows)), rows.sum()

    def losses(self, logits: Tensor, target: Tensor, rows: Tensor) -> list[Tensor]:
        """Each head's loss summed over rows weighted by ``rows``, unweighted by task.

        Divided by the head's ``known`` share and, with several heads, by its
        ``baseline`` (see the module's docstring).
        """
        several, out = len(self.heads) > 1, []
        for head, z, y in self.blocks(logits, target.float()):
            loss = (head_losses(head, z, y) * rows).sum() / head.known
            out.append(loss / head.baseline if several else loss)
        return out

    def metrics(self, logits: Tensor, target: Tensor) -> dict[str, float]:
        """Return ``valid_<score>`` (several heads: ``valid_<name>_<score>``).

        The scores are the ``scorer``'s when the objective has one (an
        estimator's: in its targets' units), else each head's own.
        """
        z, y = logits.double().numpy(), target.double().numpy().reshape(len(target), -1)
        if self.scorer is not None:
            scores = self.scorer(z, y)
        else:
            several = len(self.heads) > 1
            scores = {
                (f"{head.name}_{k}" if several else k): v
                for head, zb, yb in self.blocks(z, y)
                for k, v in head.metrics(zb, yb).items()
            }
        return {f"valid_{k}": v for k, v in scores.items()}

    def task_weights(self) -> dict[str, float]:
        """Each head's current weight.

        Learned ones: ``exp(-s_t)`` (uncertainty); FAMO's ``z_t`` times the
        fixed weights' sum (each task's gradient is also divided by its loss);
        Nash-MTL's of the last step; GradNorm's now.
        """
        if self.nash is not None:
            learned = self.nash.weights.tolist()
        elif self.gradnorm is not None:
            learned = self.gradnorm.weights().tolist()
        elif self.famo is not None:
            learned = (self.famo.weights() * self.famo.scale).tolist()
        elif self.log_vars is not None:
            learned = torch.exp(-self.log_vars.detach()).tolist()
        else:
            return {h.name: h.weight for h in self.heads}
        return dict(zip([h.name for h in self.heads], learned, strict=True))


def _global_means(
    sums: Tensor, rows: Tensor, all_reduce_: Callable[[Tensor], None]
) -> Tensor:
    """Each head's loss per unit of row weight over all ranks' rows."""
    both = torch.cat([sums, rows[None]])
    all_reduce_(both)
    return both[:-1] / both[-1]


def _flat(
    logits: Tensor, target: Tensor, weight: Tensor | None
) -> tuple[Tensor, Tensor, Tensor]:
    """Return the logits, targets (n, n_targets) and row weights, flattened.

    Logits of shape (B, k, n_outputs), an ensemble's k members, become B * k
    rows of weight 1 / k each (times the row's weight): the members' mean loss.
    """
    if target.dim() == 1:
        target = target.unsqueeze(1)
    if logits.dim() == 3:
        k = logits.shape[1]
        weight = None if weight is None else weight.repeat_interleave(k) / k
        if weight is None:
            weight = logits.new_full((logits.shape[0] * k,), 1 / k)
        logits, target = logits.flatten(0, 1), target.repeat_interleave(k, 0)
    rows = logits.new_ones(len(logits)) if weight is None else weight
    return logits, target, rows
