"""Nash-MTL task weights: the tasks bargain over each step of the shared layers.

Multi-Task Learning as a Bargaining Game (Navon et al., ICML 2022). With ``g_t``
task ``t``'s gradient and ``d = sum_t a_t g_t`` the step, the weights ``a > 0``
solve ``a_t (G G^T a)_t = 1`` for every task: each task's gain ``g_t . d`` is
``1 / a_t``, the Nash bargaining solution, so a task whose gradient conflicts
with the others' still gets a step it gains from, and none takes the step over
by its gradient's size. The gradients are taken at the fusion's output, the
representation every head reads (the paper's cheaper variant): one backward
pass through the heads per task, each step. The weights are scaled to the fixed
weights' sum, so the learning rate keeps its meaning; a task without a known
target in the batch keeps its fixed weight (its loss there is zero).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch
from torch import Tensor, nn

TINY = 1e-12  # gradients' squared norms below this share of the largest: none


class NashMTL(nn.Module):
    """Nash-MTL's weights of the tasks' losses.

    Parameters
    ----------
    weights : sequence of float
        The tasks' fixed weights: the start, the sum the weights are scaled
        to, and the weight of a task with no gradient in a batch.
    """

    weights: Tensor

    def __init__(self, weights: Sequence[float]) -> None:
        super().__init__()
        self.fixed = np.asarray(weights, dtype=np.float64)
        self.register_buffer("weights", torch.tensor(weights, dtype=torch.float32))

    def coefficients(
        self,
        sums: Tensor,
        shared: Tensor,
        all_reduce_: Callable[[Tensor], None] = lambda tensor: None,
    ) -> Tensor:
        """Return each task's weight on its loss for this step.

        ``sums``: each task's loss (n_tasks,), computed from ``shared``, the
        representation the heads read. ``all_reduce_`` sums a tensor over the
        ranks in place: the Gram matrix of the gradients is then the whole
        batch's (each rank holds other rows of the representation), and every
        rank finds the same weights.
        """
        if len(sums) < 2:  # one task: nothing to bargain over
            return self.weights.to(sums.dtype)
        flat = task_gradients(sums, shared).double()
        gram = flat @ flat.T
        all_reduce_(gram)
        self.weights.copy_(torch.from_numpy(solve(gram.cpu().numpy(), self.fixed)))
        return self.weights.to(sums.dtype)


def task_gradients(sums: Tensor, shared: Tensor) -> Tensor:
    """Each task's gradient at ``shared``, flattened: (n_tasks, shared.numel()).

    ``sums``: each task's loss, computed from ``shared``; a task whose loss
    does not reach it (no known target in the batch) gets zeros.
    """
    rows = [
        torch.autograd.grad(loss, shared, retain_graph=True, allow_unused=True)[0]
        for loss in sums
    ]
    zeros = shared.new_zeros(shared.numel())
    return torch.stack([zeros if g is None else g.flatten() for g in rows])


def solve(gram: np.ndarray, fixed: np.ndarray) -> np.ndarray:
    """Return the weights ``a > 0`` with ``a_t (gram a)_t = 1``.

    Scaled to the fixed weights' sum; tasks without a gradient keep their fixed
    weight.
    """
    from scipy.optimize import least_squares

    out = fixed.copy()
    diagonal = np.diag(gram)
    on = diagonal > TINY * max(diagonal.max(), TINY)
    if on.sum() < 2:  # one task with a gradient: nothing to bargain over
        return out
    scale = diagonal[on].mean()
    m = gram[np.ix_(on, on)] / scale + 1e-6 * np.eye(int(on.sum()))
    start = 1 / np.sqrt(np.diag(m))
    fit = least_squares(lambda a: a * (m @ a) - 1, start, bounds=(TINY, np.inf))
    out[on] = fit.x / fit.x.sum() * out[on].sum()
    return out


class Representation:
    """A model's fusion output of its last forward pass, kept while open.

    What Nash-MTL and GradNorm take the tasks' gradients at: ``with
    Representation(model, keep) as shared:`` ... ``shared.value``. With ``keep``
    False (another weighting) it hooks nothing and ``value`` stays None.
    """

    def __init__(self, model: nn.Module, keep: bool = True) -> None:
        self.value: Tensor | None = None
        self._handle = None
        if keep:
            fusion = getattr(model, "fusion", None)
            if not isinstance(fusion, nn.Module):
                raise ValueError(
                    "Nash-MTL and GradNorm weighting take the tasks' gradients at "
                    f"the model's fusion output; {type(model).__name__} has no "
                    "`fusion` module."
                )
            self._handle = fusion.register_forward_hook(self._keep)

    def _keep(self, module: nn.Module, inputs: object, output: Tensor) -> None:
        self.value = output

    def __enter__(self) -> Representation:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._handle is not None:
            self._handle.remove()
        self.value = None
