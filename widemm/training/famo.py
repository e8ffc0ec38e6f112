"""FAMO task weights: every task's loss falls at the same relative rate.

Fast Adaptive Multitask Optimization (Liu et al., NeurIPS 2023). The model
minimises ``sum_t z_t log(l_t) / c`` with ``z = softmax(w)`` and
``c = sum_t z_t / l_t`` (no gradient through ``z`` or ``c``): each task's
gradient is divided by its current loss, then weighted by ``z``
(:meth:`FAMO.coefficients`, from the losses over all ranks' rows). After each
optimizer step the task logits ``w`` move by Adam against how much each task's
log-loss fell on that batch, so a task that falls slower than the others gains
weight. One more forward pass a step (the batch's losses after the step); the
weights live in buffers, saved and resumed with the objective.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

TINY = 1e-8  # losses are floored here before their logs


class FAMO(nn.Module):
    """FAMO's weights of the tasks' losses, and their update.

    Parameters
    ----------
    weights : sequence of float
        The tasks' fixed weights: ``z`` starts at their shares, and the loss
        is scaled by their sum, so with equal losses a step is the fixed
        weighting's step.
    lr, decay : float
        Adam's rate for the task logits, and their L2 decay towards the start
        (FAMO's 0.025 and 0.001).
    """

    logits: Tensor
    start: Tensor
    moments: Tensor
    steps: Tensor

    def __init__(
        self, weights: Sequence[float], lr: float = 0.025, decay: float = 1e-3
    ) -> None:
        super().__init__()
        self.scale, self.lr, self.decay = float(sum(weights)), lr, decay
        n_tasks = len(weights)
        start = torch.tensor(weights, dtype=torch.float32).clamp_min(TINY).log()
        self.register_buffer("start", start - start.mean())
        self.register_buffer("logits", self.start.clone())
        self.register_buffer("moments", torch.zeros(2, n_tasks))  # Adam's m and v
        self.register_buffer("steps", torch.zeros(()))

    def coefficients(self, losses: Tensor) -> Tensor:
        """Return each task's weight on its loss, from each one's mean loss.

        ``scale * z_t / (c * l_t)``: the gradient of ``scale * sum_t z_t
        log(l_t) / c`` is these times the losses' gradients.
        """
        z = self.weights()
        floor = losses.detach().clamp_min(TINY)
        return self.scale * z / floor / (z / floor).sum()

    def weights(self) -> Tensor:
        return torch.softmax(self.logits, 0)

    @torch.no_grad()
    def update(self, before: Tensor, after: Tensor) -> None:
        """Move the task logits by the tasks' mean losses before and after a step."""
        fall = before.clamp_min(TINY).log() - after.clamp_min(TINY).log()
        z = self.weights()
        grad = z * (fall - (z * fall).sum())  # the softmax's Jacobian times fall
        grad += self.decay * (self.logits - self.start)
        self.logits -= adam_step(grad, self.moments, self.steps, self.lr)


def adam_step(
    grad: Tensor, moments: Tensor, steps: Tensor, lr: float, eps: float = TINY
) -> Tensor:
    """Return Adam's step (betas 0.9, 0.999) for ``grad``, to subtract.

    ``moments`` (m and v stacked) and ``steps`` (a count) are updated in place:
    they are the caller's buffers, saved and resumed with it.
    """
    steps += 1
    m, v = moments
    m.mul_(0.9).add_(grad, alpha=0.1)
    v.mul_(0.999).addcmul_(grad, grad, value=0.001)
    m_hat = m / (1 - 0.9**steps)
    v_hat = v / (1 - 0.999**steps)
    return lr * m_hat / (v_hat.sqrt() + eps)
