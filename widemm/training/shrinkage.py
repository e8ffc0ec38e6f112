"""Each target's own stopping point, for a model whose targets share their layers.

Early stopping watches the targets' weighted validation loss: one epoch for all.
Targets reach their best at different epochs (on movies, the Tomatometer at the
first, the genres at the third), and the shared layers cannot be restored to a
different epoch per target. What can be chosen per target column is how much of
its head's output to keep: training moves each output away from where it started
(zero, for heads beside the trees), and stopping early is, to first order,
shrinking that movement (early stopping is L2 shrinkage for a linear model).
The trees' scores start at scale 1 and their scale learns too: each column's
trees keep ``1 + t (scale - 1)`` of the way to their learned scale, ``t`` chosen
beside the head's share (on yeast's 14 labels tying ``t`` to the head's share
cost 0.018 macro ROC AUC; leaving the scale as trained let a noisy forecast keep
a negative one). :func:`shrink_heads` picks both on the validation rows and
folds them into the column's rows of its head's weights and of the trees'
scale: the model, its explanations and its exports stay as they are.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import numpy as np
import torch
from torch import nn

from widemm.data import FrameDataset
from widemm.heads import Head
from widemm.models import WideDeep
from widemm.training.objective import head_losses
from widemm.training.trainer import Trainer

# The shares tried, from 0 (the wide part and trees alone) to 1 (the head as
# trained).
SHARES = np.linspace(0.0, 1.0, 21)
# Smaller shares are kept only if they lower the loss by more than this share of
# it: near the best, neighbouring shares' losses differ by less than the float
# noise of sums added in another order (two processes' against one), which would
# pick either.
TOLERANCE = 1e-4


def shrink_heads(
    model: WideDeep, trainer: Trainer, valid: FrameDataset
) -> dict[str, float]:
    """Scale each target column's outputs by the shares that validate best.

    Returns the head's share by target column (``<task>`` or ``<task>[j]``).
    The shares are searched on the validation rows' logits as trained, with
    every head at zero, and with the trees' scale back at 1 too: the logits are
    linear in each share, so the model runs three times. A column keeps its
    head and trees as trained unless smaller shares lower its loss (by more
    than ``TOLERANCE`` of it).
    """
    scale = None if model.trees is None else model.trees.scale
    full = torch.from_numpy(trainer.predict(model, valid))
    trained = {k: v.clone() for k, v in model.heads.state_dict().items()}
    learned = None if scale is None else scale.detach().clone()
    with torch.no_grad():
        for p in model.heads.parameters():
            p.zero_()
        headless = torch.from_numpy(trainer.predict(model, valid))
        start = headless
        if scale is not None:
            scale.fill_(1.0)
            start = torch.from_numpy(trainer.predict(model, valid))
    model.heads.load_state_dict(trained)
    head_part, tree_part = full - headless, headless - start
    target = valid.inputs["target"].reshape(len(full), -1).float()
    weight = valid.inputs.get("weight")
    tree_shares = SHARES if scale is not None else np.ones(1)
    shares: dict[str, float] = {}
    for name, head, outputs, column, rows in _columns(trainer.objective.heads):
        y = target[:, column : column + 1]
        base, trees, heads = (z[:, outputs] for z in (start, tree_part, head_part))
        tries = {
            (float(h), float(t)): _loss(head, base + t * trees + h * heads, y, weight)
            for h in SHARES[::-1]  # ties keep the larger shares
            for t in tree_shares[::-1]
        }
        low = min(tries.values())
        best = next(k for k, v in tries.items() if v <= low + TOLERANCE * abs(low))
        linear = model.heads[head.name]
        assert isinstance(linear, nn.Linear)
        with torch.no_grad():
            linear.weight[rows] *= best[0]
            linear.bias[rows] *= best[0]
            if scale is not None and learned is not None:
                scale[outputs] = 1 + best[1] * (learned[outputs] - 1)
        shares[name] = best[0]
    return shares


def _columns(
    heads: Sequence[Head],
) -> list[tuple[str, Head, list[int], int, list[int]]]:
    """Return per target column: its name and a one-column head for its loss.

    Also its outputs among all the model's, its target column and its rows of
    its head's weights.
    """
    out, o, t = [], 0, 0
    for head in heads:
        if head.kind == "multiclass":
            rows = list(range(head.n_outputs))
            out.append((head.name, head, [o + r for r in rows], t, rows))
        else:
            per = head.n_outputs // head.n_targets  # quantiles
            one = replace(head, n_targets=1)
            for j in range(head.n_targets):
                rows = list(range(j * per, (j + 1) * per))
                name = head.name if head.n_targets == 1 else f"{head.name}[{j}]"
                out.append((name, one, [o + r for r in rows], t + j, rows))
        o, t = o + head.n_outputs, t + head.n_targets
    return out


def _loss(
    head: Head, logits: torch.Tensor, y: torch.Tensor, weight: torch.Tensor | None
) -> float:
    """Return the column's validation loss (weighted by the rows' weights)."""
    losses = head_losses(head, logits, y)
    return float(losses.sum() if weight is None else (losses * weight).sum())
