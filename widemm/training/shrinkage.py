"""Each target's own stopping point, for a model whose targets share their layers.

Early stopping watches the targets' weighted validation loss: one epoch for all.
Targets reach their best at different epochs (on movies, the Tomatometer at the
first, the genres at the third), and the shared layers cannot be restored to a
different epoch per target. What can be chosen per target column is how much of
its head's output to keep: training moves each output away from where it started
(zero, for heads beside the trees), and stopping early is, to first order,
shrinking that movement (early stopping is L2 shrinkage for a linear model).
The trees' scores start at scale 1 and their scale learns too, so it is shrunk
alike: a share ``s`` keeps ``1 + s (scale - 1)`` of them. :func:`shrink_heads`
picks each target column's share on the validation rows and folds it into its
rows of the head's weights and its trees' scale: the model, its explanations
and its exports stay as they are.
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


def shrink_heads(
    model: WideDeep, trainer: Trainer, valid: FrameDataset
) -> dict[str, float]:
    """Scale each target column's outputs by the share that validates best.

    Returns the shares by target column (``<task>`` or ``<task>[j]``). The
    shares are searched on the validation rows' logits as trained and at the
    start (every head at zero, the trees' scores at scale 1): the logits are
    linear in a share, so the model runs twice. A column keeps 1 unless a
    smaller share lowers its loss.
    """
    full = torch.from_numpy(trainer.predict(model, valid))
    trained = {k: v.clone() for k, v in model.heads.state_dict().items()}
    scale = None if model.trees is None else model.trees.scale
    learned = None if scale is None else scale.detach().clone()
    with torch.no_grad():
        for p in model.heads.parameters():
            p.zero_()
        if scale is not None:
            scale.fill_(1.0)
    without = torch.from_numpy(trainer.predict(model, valid))
    model.heads.load_state_dict(trained)
    target = valid.inputs["target"].reshape(len(full), -1).float()
    weight = valid.inputs.get("weight")
    shares: dict[str, float] = {}
    for name, head, outputs, column, rows in _columns(trainer.objective.heads):
        y = target[:, column : column + 1]
        tries = [
            _loss(
                head, without[:, outputs] + s * (full - without)[:, outputs], y, weight
            )
            for s in SHARES
        ]
        best = 1.0 if tries[-1] <= min(tries) else float(SHARES[np.argmin(tries)])
        linear = model.heads[head.name]
        assert isinstance(linear, nn.Linear)
        with torch.no_grad():
            linear.weight[rows] *= best
            linear.bias[rows] *= best
            if scale is not None and learned is not None:
                scale[outputs] = 1 + best * (learned[outputs] - 1)
        shares[name] = best
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
