"""The wide part: a linear model over one-hot indices, and the trees' scores."""

from __future__ import annotations

import torch
from torch import Tensor, nn


class Wide(nn.Module):
    """Sparse linear model: the sum of one learned weight per active index.

    Parameters
    ----------
    n_indices : int
        Size of the index space (``WidePreprocessor.n_indices_``).
    n_outputs : int
        Logits per row.
    padding_idx : int, optional
        An index whose weight stays 0 (fills rows of fewer text n-grams).
    """

    def __init__(
        self, n_indices: int, n_outputs: int, padding_idx: int | None = None
    ) -> None:
        super().__init__()
        self.linear = nn.EmbeddingBag(
            n_indices, n_outputs, mode="sum", padding_idx=padding_idx
        )
        nn.init.zeros_(self.linear.weight)
        self.bias = nn.Parameter(torch.zeros(n_outputs))

    def forward(self, x: Tensor) -> Tensor:
        """X (batch_size, n_inputs) int64 -> logits (batch_size, n_outputs).

        Exported (ONNX, ``torch.export``) as a gather and a sum: ONNX has no
        embedding bag, and its stand-in loops over the rows (10x slower).
        """
        if torch.compiler.is_exporting():
            return self.linear.weight[x].sum(1) + self.bias
        return self.linear(x) + self.bias


class TreeLogits(nn.Module):
    """Gradient-boosted trees' scores as logits, each output's scale learned from 1.

    The scores are a model input (``"trees"``, see ``preprocessing.trees``).

    Parameters
    ----------
    n_outputs : int
        Logits per row (the scores' columns).
    """

    lr_scale = 100.0  # a few scalars, learned as fast as the trees deserve

    def __init__(self, n_outputs: int) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.ones(n_outputs))

    def forward(self, scores: Tensor) -> Tensor:
        """Scores (batch_size, n_outputs) -> logits of the same shape."""
        return scores * self.scale
