"""Learning from unlabeled rows: a CLIP-style contrastive loss between modalities.

Each row's modalities (its table, each text column, each image column) are
embeddings of one item: the loss pulls a row's pair of embeddings together and
pushes apart those of other rows in the batch (Radford et al., 2021; as
TorchMultimodal's ``ContrastiveLossWithTemperature``). A row missing one of the
pair is left out of that pair's term. A table with no second modality is
contrasted with a corrupted copy of itself (SCARF, Bahri et al., 2022): a share
of its values replaced by other rows' values.

``Contrasting`` and ``ContrastiveObjective`` let the ``Trainer`` run this loss,
so pretraining gets what fitting has: data parallelism over ranks (each rank's
rows, the other ranks' as extra negatives), checkpoints and resuming, seeded
epochs, callbacks and log lines.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from itertools import combinations
from typing import TYPE_CHECKING, Any, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from widemm.training.objective import Objective

if TYPE_CHECKING:
    from widemm.models import WideDeep

MAX_SCALE = 100.0  # CLIP's cap of the logit scale (temperature 0.01)
Reduction = Literal["mean", "sum"]


class ContrastiveLoss(nn.Module):
    """Symmetric InfoNCE over every pair of modalities, with a learned temperature.

    Parameters
    ----------
    temperature : float
        Initial temperature; ``logit_scale = log(1 / temperature)`` is learned
        and clamped to ``[0, log(100)]``.

    For embeddings ``a``, ``b`` (rows that hold both), normalised, the pair's
    loss is ``(CE(s a bᵀ, I) + CE(s b aᵀ, I)) / 2`` with ``s = exp(logit_scale)``;
    the total is the mean over pairs that have at least 2 such rows. Under DDP the
    other ranks' embeddings are gathered as extra negatives (gradients flow back
    to their ranks); ranks may hold different numbers of rows.
    """

    def __init__(self, temperature: float = 0.07) -> None:
        super().__init__()
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1 / temperature)))

    def pair(self, a: Tensor, b: Tensor, reduction: Reduction = "mean") -> Tensor:
        """Return the symmetric loss of two (B, d) embeddings of the same B rows.

        ``"sum"`` sums the rows' losses instead of averaging them. Fewer than 2
        rows over all ranks: nothing to contrast, 0.
        """
        a, b = F.normalize(a, dim=-1), F.normalize(b, dim=-1)
        all_a, all_b, offset, total = _gathered(a, b)
        if total < 2:
            return self.logit_scale * 0.0  # 0, in the graph (every rank alike)
        labels = torch.arange(len(a), device=a.device) + offset
        scale = self.logit_scale.clamp(0, math.log(MAX_SCALE)).exp()
        a_to_b = F.cross_entropy(scale * a @ all_b.T, labels, reduction="sum")
        b_to_a = F.cross_entropy(scale * b @ all_a.T, labels, reduction="sum")
        loss = (a_to_b + b_to_a) / 2
        return loss / max(len(a), 1) if reduction == "mean" else loss

    def forward(
        self,
        embeddings: Mapping[str, Tensor],
        present: Mapping[str, Tensor],
        reduction: Reduction = "mean",
    ) -> Tensor:
        """Mean pair loss over modalities; ``present[slot]`` (B,) masks absent rows.

        ``"sum"``: each pair's rows' losses summed (then the mean over pairs).
        """
        losses = []
        for s, t in combinations(sorted(embeddings), 2):
            both = torch.ones(len(embeddings[s]), dtype=torch.bool)
            both = both.to(embeddings[s].device)
            for slot in (s, t):
                if slot in present:
                    both = both & present[slot].bool()
            pair = self.pair(embeddings[s][both], embeddings[t][both], reduction)
            losses.append(pair)
        return torch.stack(losses).mean()


class Contrasting(nn.Module):
    """A ``WideDeep`` and a ``ContrastiveLoss``, trained by the ``Trainer``.

    ``forward(batch)`` gives each row's share of the batch's contrastive loss
    as (B, 1) "logits", which ``ContrastiveObjective`` sums: the ``Trainer``'s
    per-row averaging over ranks then yields the loss of the whole batch.

    Parameters
    ----------
    model : WideDeep
        Its encoders and projections learn (``model.embed``); the module holds
        them alone (its ``state_dict`` too), with the loss's temperature.
    corruption : float
        A table alone is contrasted with a copy of each row whose values are
        replaced at this rate by other rows' (SCARF).
    """

    def __init__(self, model: WideDeep, corruption: float) -> None:
        super().__init__()
        # Only the parts ``embed`` uses are this module's: DDP wants every
        # parameter of the module it wraps to get a gradient (not the fusion's).
        self.parts = nn.ModuleList([model.encoders, model.projections])
        self.embed = model.embed  # a method: not registered as a module
        self.loss, self.corruption = ContrastiveLoss(), corruption

    def forward(self, batch: Mapping[str, Any]) -> Tensor:
        embeddings, present = self.embed(batch)
        embeddings = {k: pooled(e) for k, e in embeddings.items()}
        if len(embeddings) == 1:  # a table alone: against a corrupted copy
            slot, tab = next(iter(embeddings.items()))
            noisy = {k: corrupt(v, self.corruption) for k, v in batch[slot].items()}
            view, _ = self.embed({**batch, slot: noisy})
            embeddings, present = {"a": tab, "b": pooled(view[slot])}, {}
        rows = len(next(iter(embeddings.values())))
        loss = self.loss(embeddings, present, reduction="sum")
        return (loss / max(rows, 1)).expand(rows, 1)

    def temperature(self) -> float:
        """Return the learned temperature (after the clamp)."""
        scale = self.loss.logit_scale.detach().clamp(0, math.log(MAX_SCALE))
        return float(1 / scale.exp())


class ContrastiveObjective(Objective):
    """The objective of ``Contrasting``: the sum of its per-row losses."""

    def __init__(self) -> None:
        super().__init__([])

    def forward(
        self, logits: Tensor, target: Tensor, weight: Tensor | None = None
    ) -> Tensor:
        return logits.sum()

    def metrics(self, logits: Tensor, target: Tensor) -> dict[str, float]:
        return {}


def pooled(e: Tensor) -> Tensor:
    """Average an ensemble's (B, k, d) members; keep (B, d) as it is."""
    return e.mean(1) if e.dim() == 3 else e


def corrupt(
    x: Tensor, share: float, generator: torch.Generator | None = None
) -> Tensor:
    """Replace ``share`` of each row's values by another random row's (SCARF).

    ``x`` is (B, n_features), codes or values; each row keeps its own where a
    uniform draw is above ``share``.
    """
    if x.shape[1] == 0 or len(x) < 2:
        return x
    donor = torch.randint(0, len(x), x.shape, generator=generator).to(x.device)
    swap = torch.rand(x.shape, generator=generator).to(x.device) < share
    return torch.where(swap, x.gather(0, donor), x)


def _gathered(a: Tensor, b: Tensor) -> tuple[Tensor, Tensor, int, int]:
    """Return every rank's ``a`` and ``b`` (with gradients), this rank's offset.

    And the number of rows over all ranks.
    """
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()):
        return a, b, 0, len(a)
    mine = torch.tensor(len(a), device=a.device)  # on the backend's device
    sizes = [torch.zeros_like(mine) for _ in range(dist.get_world_size())]
    dist.all_gather(sizes, mine)
    counts = [int(n) for n in sizes]
    offset, total = sum(counts[: dist.get_rank()]), sum(counts)
    if total < 2:
        return a, b, offset, total
    return _Gather.apply(a, counts), _Gather.apply(b, counts), offset, total


class _Gather(torch.autograd.Function):
    """All ranks' rows in rank order; gradients summed over ranks flow back.

    Ranks may hold different numbers of rows (``counts``): each pads its rows to
    the largest count for ``all_gather``, and the padding is dropped.
    """

    @staticmethod
    def forward(ctx: Any, x: Tensor, counts: list[int]) -> Tensor:
        import torch.distributed as dist

        ctx.counts = counts
        padded = x.new_zeros(max(counts), *x.shape[1:])
        padded[: len(x)] = x
        parts = [torch.zeros_like(padded) for _ in counts]
        dist.all_gather(parts, padded)
        return torch.cat([p[:n] for p, n in zip(parts, counts, strict=True)])

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor, None]:
        import torch.distributed as dist

        grad = grad.contiguous().clone()
        dist.all_reduce(grad)  # every rank's loss depends on this rank's rows
        start = sum(ctx.counts[: dist.get_rank()])
        return grad[start : start + ctx.counts[dist.get_rank()]], None
