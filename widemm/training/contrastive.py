"""Learning from unlabeled rows: a CLIP-style contrastive loss between modalities.

Each row's modalities (its table, each text column, each image column) are
embeddings of one item: the loss pulls a row's pair of embeddings together and
pushes apart those of other rows in the batch (Radford et al., 2021; as
TorchMultimodal's ``ContrastiveLossWithTemperature``). A row missing one of the
pair is left out of that pair's term. The fusion learns from a second term:
two views of each row, each with a share of its table's values replaced by
other rows' (SCARF, Bahri et al., 2022) and its texts and images dropped at the
same rate, are contrasted after the fusion and a small head (SimCLR, Chen et
al., 2020). A table with no second modality has that term alone.

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

    Notes
    -----
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

    Two terms, summed: every pair of modalities (a row's table, texts and
    images: the loss's pairs), and two views of each row after the fusion (its
    table's values replaced at rate ``corruption`` by other rows', as SCARF,
    and each text or image dropped at that rate), so the fusion learns too and
    ``fit`` starts with only the heads untrained. A table alone has the views'
    term only. The views run the encoders twice more per batch: free for
    frozen, cached backbones, 3x the work for trainable ones.

    ``forward(batch)`` gives each row's share of the batch's loss as (B, 1)
    "logits", which ``ContrastiveObjective`` sums: the ``Trainer``'s per-row
    averaging over ranks then yields the loss of the whole batch.

    Parameters
    ----------
    model : WideDeep
        Its encoders, projections and fusion learn; the module holds them alone
        (its ``state_dict`` too), with the loss's temperature.
    corruption : float
        Rate of the views' replaced values and dropped texts and images.
    """

    def __init__(self, model: WideDeep, corruption: float) -> None:
        super().__init__()
        # Only the parts used here are this module's: DDP wants every parameter
        # of the module it wraps to get a gradient (not the heads' or wide's).
        self.parts = nn.ModuleList([model.encoders, model.projections, model.fusion])
        self.embed, self.fused = model.embed, model.fused  # methods, not modules
        self.slots = list(model.encoders)
        # The views' head (SimCLR's), dropped after pretraining: the fusion's
        # output may be near 0 (a ReLU's), where normalising it is ill-conditioned.
        dim = model.fusion.output_dim
        self.head = nn.Sequential(nn.Linear(dim, dim), nn.ReLU(), nn.Linear(dim, dim))
        self.loss, self.corruption = ContrastiveLoss(), corruption

    def forward(self, batch: Mapping[str, Any]) -> Tensor:
        a, b = (self.head(pooled(self.fused(self.view(batch)))) for _ in range(2))
        rows = len(a)
        loss = self.loss.pair(a, b, reduction="sum")
        if len(self.slots) > 1:
            embeddings, present = self.embed(batch)
            embeddings = {k: pooled(e) for k, e in embeddings.items()}
            loss = loss + self.loss(embeddings, present, reduction="sum")
        return (loss / max(rows, 1)).expand(rows, 1)

    def view(self, batch: Mapping[str, Any]) -> dict[str, Any]:
        """Return the batch with the table corrupted and texts and images dropped."""
        out = dict(batch)
        for slot in self.slots:
            x = batch[slot]
            if slot == "tab":
                out[slot] = {k: corrupt(v, self.corruption) for k, v in x.items()}
            elif "present" in x:
                keep = torch.rand(x["present"].shape, device=x["present"].device)
                out[slot] = {**x, "present": x["present"] & (keep >= self.corruption)}
        return out

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
