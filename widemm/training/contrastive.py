"""Learning from unlabeled rows: a CLIP-style contrastive loss between modalities.

Each row's modalities (its table, each text column, each image column) are
embeddings of one item: the loss pulls a row's pair of embeddings together and
pushes apart those of other rows in the batch (Radford et al., 2021; as
TorchMultimodal's ``ContrastiveLossWithTemperature``). A row missing one of the
pair is left out of that pair's term. A table with no second modality is
contrasted with a corrupted copy of itself (SCARF, Bahri et al., 2022): a share
of its values replaced by other rows' values.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from itertools import combinations
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

MAX_SCALE = 100.0  # CLIP's cap of the logit scale (temperature 0.01)


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
    to their ranks).
    """

    def __init__(self, temperature: float = 0.07) -> None:
        super().__init__()
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1 / temperature)))

    def pair(self, a: Tensor, b: Tensor) -> Tensor:
        """Return the symmetric loss of two (B, d) embeddings of the same B rows."""
        a, b = F.normalize(a, dim=-1), F.normalize(b, dim=-1)
        labels = torch.arange(len(a), device=a.device)
        all_a, all_b, offset = _gathered(a, b)
        scale = self.logit_scale.clamp(0, math.log(MAX_SCALE)).exp()
        a_to_b = F.cross_entropy(scale * a @ all_b.T, labels + offset)
        b_to_a = F.cross_entropy(scale * b @ all_a.T, labels + offset)
        return (a_to_b + b_to_a) / 2

    def forward(
        self, embeddings: Mapping[str, Tensor], present: Mapping[str, Tensor]
    ) -> Tensor:
        """Mean pair loss over modalities; ``present[slot]`` (B,) masks absent rows."""
        losses = []
        for s, t in combinations(sorted(embeddings), 2):
            both = torch.ones(len(embeddings[s]), dtype=torch.bool)
            both = both.to(embeddings[s].device)
            for slot in (s, t):
                if slot in present:
                    both = both & present[slot].bool()
            if int(both.sum()) >= 2:
                losses.append(self.pair(embeddings[s][both], embeddings[t][both]))
        if not losses:
            raise ValueError(
                "No pair of modalities is present in 2 rows of the batch: nothing to "
                "contrast. Pretraining needs 2+ modalities per row, or a table alone."
            )
        return torch.stack(losses).mean()


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


def _gathered(a: Tensor, b: Tensor) -> tuple[Tensor, Tensor, int]:
    """Every rank's ``a`` and ``b`` (with gradients) and this rank's row offset."""
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()):
        return a, b, 0
    mine = torch.tensor(len(a), device=a.device)  # on the backend's device
    sizes = [torch.zeros_like(mine) for _ in range(dist.get_world_size())]
    dist.all_gather(sizes, mine)
    if len({int(n) for n in sizes}) > 1:  # all_gather needs equal shapes
        raise ValueError(
            "Ranks hold batches of different sizes; pretraining under DDP needs "
            "batches of equal size on every rank."
        )
    return _Gather.apply(a), _Gather.apply(b), dist.get_rank() * len(a)


class _Gather(torch.autograd.Function):
    """All ranks' rows in rank order; gradients summed over ranks flow back."""

    @staticmethod
    def forward(ctx: Any, x: Tensor) -> Tensor:
        import torch.distributed as dist

        parts = [torch.zeros_like(x) for _ in range(dist.get_world_size())]
        dist.all_gather(parts, x.contiguous())
        return torch.cat(parts)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> Tensor:
        import torch.distributed as dist

        grad = grad.contiguous().clone()
        dist.all_reduce(grad)  # every rank's loss depends on this rank's rows
        n = len(grad) // dist.get_world_size()
        return grad[dist.get_rank() * n : (dist.get_rank() + 1) * n]
