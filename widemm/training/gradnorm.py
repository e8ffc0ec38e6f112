"""GradNorm task weights: every task moves the shared layers as hard as it lags.

GradNorm: Gradient Normalization for Adaptive Loss Balancing (Chen et al., ICML
2018). With ``G_t = w_t |g_t|`` task ``t``'s weighted gradient norm, ``r_t`` its
loss over its first step's loss relative to the tasks' mean of that ratio (how
far it lags), the weights ``w`` descend ``sum_t |G_t - mean(G) r_t^alpha|``
(the target held fixed), so a task that trains slower than the others pulls
harder on the shared layers, and no task takes them over by its gradient's
size. The gradients are taken at the fusion's output, the representation every
head reads (as Nash-MTL's: one backward pass through the heads per task, each
step; the paper takes them at the last shared layer's weights). The weights
move by Adam on their logs (the step is then the same at every scale of the
fixed weights) and are scaled back to the fixed weights' sum, so the learning
rate keeps its meaning; a task without a known target in the batch keeps its
weight.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor, nn

from widemm.training.famo import adam_step
from widemm.training.nash import TINY, task_gradients


class GradNorm(nn.Module):
    """GradNorm's weights of the tasks' losses, and their update.

    Parameters
    ----------
    weights : sequence of float
        The tasks' fixed weights: the start and the sum the weights are
        scaled to.
    alpha : float
        The restoring force: 0 asks every task for the same gradient norm,
        larger values more for tasks that lag (the paper's 0.12 to 3; 1.5 as
        its NYUv2 runs and Ludwig's default).
    lr : float
        Adam's rate for the weights' logs (FAMO's 0.025 for its task logits).
    """

    logits: Tensor
    initial: Tensor
    moments: Tensor
    steps: Tensor

    def __init__(
        self, weights: Sequence[float], alpha: float = 1.5, lr: float = 0.025
    ) -> None:
        super().__init__()
        self.alpha, self.lr = alpha, lr
        n_tasks = len(weights)
        start = torch.tensor(weights, dtype=torch.float32).clamp_min(TINY).log()
        self.register_buffer("logits", start)
        self.register_buffer("initial", torch.zeros(n_tasks))  # first losses
        self.register_buffer("moments", torch.zeros(2, n_tasks))  # Adam's m and v
        self.register_buffer("steps", torch.zeros(()))

    def weights(self) -> Tensor:
        """Return the tasks' weights (they sum to the fixed weights' sum)."""
        return self.logits.exp()

    def coefficients(
        self,
        sums: Tensor,
        means: Tensor,
        shared: Tensor,
        all_reduce_: Callable[[Tensor], None] = lambda tensor: None,
    ) -> Tensor:
        """Return each task's weight on its loss for this step, then move them.

        ``sums``: each task's loss (n_tasks,), computed from ``shared``, the
        representation the heads read; ``means``: each task's mean loss over
        all ranks' rows. ``all_reduce_`` sums a tensor over the ranks in place:
        the gradients' norms are then the whole batch's, and every rank moves
        its weights alike.
        """
        out = self.weights().to(sums.dtype)
        if len(sums) < 2:  # one task: nothing to balance
            return out
        norms = (task_gradients(sums, shared).double() ** 2).sum(1)
        all_reduce_(norms)
        self._move(norms.sqrt().float(), means.detach().float())
        return out

    @torch.no_grad()
    def _move(self, norms: Tensor, means: Tensor) -> None:
        first = (self.initial == 0) & (means > 0)  # a task's first loss: its start
        self.initial[first] = means[first]
        on = (norms > TINY * norms.max().clamp_min(TINY)) & (means > 0) & ~first
        if on.sum() < 2:  # one task with a gradient: nothing to balance
            return
        ratio = means[on] / self.initial[on]
        lag = ratio / ratio.mean()
        G = self.weights()[on] * norms[on]
        target = G.mean() * lag**self.alpha
        grad = torch.zeros_like(self.logits)
        grad[on] = torch.sign(G - target) * G  # d|G_t - target_t| / d log w_t
        step = adam_step(grad, self.moments, self.steps, self.lr, eps=TINY)
        total = self.logits[on].exp().sum()  # the moved weights keep their sum
        self.logits[on] -= step[on]
        self.logits[on] += (total / self.logits[on].exp().sum()).log()
