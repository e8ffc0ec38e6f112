"""Building blocks shared by the model parts."""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn


class Encoder(nn.Module):
    """A deep part: maps its slot of the batch to (batch_size, output_dim)."""

    output_dim: int


class MLP(nn.Sequential):
    """Linear -> ReLU -> Dropout for each hidden size; identity when there are none.

    Parameters
    ----------
    in_dim : int
        Input size.
    hidden_dims : sequence of int
        Output size of each block; the last one is ``output_dim``.
    dropout : float
        Dropout after each activation.
    """

    def __init__(self, in_dim: int, hidden_dims: Sequence[int], dropout: float = 0.0):
        layers: list[nn.Module] = []
        for d_in, d_out in zip([in_dim, *hidden_dims], hidden_dims, strict=False):
            layers += [nn.Linear(d_in, d_out), nn.ReLU(), nn.Dropout(dropout)]
        super().__init__(*layers)
        self.output_dim = hidden_dims[-1] if hidden_dims else in_dim

    def forward(self, x: Tensor) -> Tensor:
        return super().forward(x)
