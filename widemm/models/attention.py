"""Attention fusions: a small transformer over the modalities' tokens.

See :mod:`widemm.models.fusion` for the fusions and what each does.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import Tensor, nn

from widemm.models.fusion import Projected


class _WithCLS(Projected):
    """A fusion over tokens: ``dim``-wide projections, slot types and a CLS token."""

    fills_absent = False

    def __init__(
        self,
        input_dims: Mapping[str, int],
        *,
        dim: int = 128,
        n_layers: int = 2,
        n_heads: int = 4,
        dropout: float = 0.1,
        modality_dropout: float = 0.0,
    ) -> None:
        super().__init__(input_dims, dim, dropout, modality_dropout)
        self.cls = nn.Parameter(torch.randn(dim) * 0.02)
        self.types = nn.Parameter(torch.randn(len(self.slots), dim) * 0.02)
        self.build(dim, n_layers, n_heads, dropout)
        self.norm = nn.LayerNorm(dim)
        self.output_dim = dim

    def build(self, dim: int, n_layers: int, n_heads: int, dropout: float) -> None:
        """Make the attention layers."""
        raise NotImplementedError


class AttentionFusion(_WithCLS):
    """A small transformer over one token per slot plus a CLS token.

    Each slot's embedding is projected to ``dim`` and gets a learned modality-type
    embedding; absent slots are masked out of the attention (the CLS token is
    always there), so this fusion has no learned "absent" embeddings. The output
    is the CLS token's final state.

    Parameters
    ----------
    input_dims : mapping of str to int
        Embedding size per slot.
    dim : int
        Token size, and ``output_dim``.
    n_layers, n_heads : int
        Transformer depth and attention heads.
    dropout : float
        Dropout in the projections and the transformer.
    modality_dropout : float
        See :class:`Fusion`.
    """

    def build(self, dim: int, n_layers: int, n_heads: int, dropout: float) -> None:
        """Make the transformer."""
        layer = nn.TransformerEncoderLayer(
            dim, n_heads, 2 * dim, dropout, batch_first=True, norm_first=True
        )
        self.transformer = nn.TransformerEncoder(
            layer, n_layers, enable_nested_tensor=False
        )

    def forward(
        self, embeddings: Mapping[str, Tensor], present: Mapping[str, Tensor]
    ) -> Tensor:
        projected, masks = self.projected(embeddings, present)
        tokens = (
            torch.stack(list(projected.values()), dim=1) + self.types
        )  # (B, n, dim)
        cls = self.cls.expand(tokens.shape[0], 1, -1)
        absent = ~torch.stack([masks[k] for k in self.slots], dim=1)
        padding = torch.cat([absent.new_zeros(tokens.shape[0], 1), absent], dim=1)
        out = self.transformer(
            torch.cat([cls, tokens], dim=1), src_key_padding_mask=padding
        )
        return self.norm(out[:, 0])


class CrossAttentionFusion(_WithCLS):
    """Attention across modalities, over each modality's tokens plus a CLS token.

    A slot gives (B, T, d) tokens and a (B, T) mask (``WideDeep`` passes text
    segments and image cells, see ``widemm.models.layers.Tokenized``), or a
    (B, d) embedding as one token. Tokens are projected to ``dim`` and get their
    slot's type embedding. In every layer a token attends to the CLS token and
    the other slots' present tokens (text attends to image cells, the tabular
    token to text segments), never to its own slot's; the CLS token attends to
    all, and its final state is the output. A row's absent slots and padding
    tokens are masked out.

    The mask weighs each key's attention (0 or 1) rather than dropping it, and
    passes through the slot's tap with the tokens: gradient explanations then
    move a row's mask to the background's smoothly, and their attributions add
    up to the output (a mask outside the taps would not be part of the path).

    Parameters are those of :class:`AttentionFusion`.
    """

    uses_tokens = True

    def build(self, dim: int, n_layers: int, n_heads: int, dropout: float) -> None:
        """Make the cross-attention blocks."""
        self.blocks = nn.ModuleList(
            _CrossBlock(dim, n_heads, dropout) for _ in range(n_layers)
        )

    def forward(
        self, embeddings: Mapping[str, Tensor], present: Mapping[str, Tensor]
    ) -> Tensor:
        sequences, weights, groups = [], [], []
        for i, k in enumerate(self.slots):
            e = embeddings[k]
            tokens = e if e.dim() == 3 else e[:, None]
            n, length = tokens.shape[:2]
            mask = present.get(k, tokens.new_ones(n, dtype=torch.bool))
            mask = mask if mask.dim() == 2 else mask[:, None].expand(n, length)
            if self.training and self.modality_dropout > 0:
                keep = torch.rand(n, 1, device=mask.device) >= self.modality_dropout
                mask = mask & keep
            tapped = self.taps[k](torch.cat([tokens, mask[..., None].to(e.dtype)], -1))
            sequences.append(self.project[k](tapped[..., :-1]) + self.types[i])
            weights.append(tapped[..., -1])
            groups += [i] * length
        n = sequences[0].shape[0]  # not len(): export keeps the batch size dynamic
        x = torch.cat([self.cls.expand(n, 1, -1), *sequences], 1)
        weight = torch.cat([weights[0].new_ones(n, 1), *weights], 1)
        group = torch.tensor([-1, *groups], device=x.device)
        own_slot = (group[:, None] == group[None, :]) & (group[:, None] >= 0)
        for block in self.blocks:
            x = block(x, weight, own_slot)
        return self.norm(x[:, 0])


class _CrossBlock(nn.Module):
    """Pre-norm multi-head attention with weighted keys and blocked pairs, then FFN."""

    def __init__(self, dim: int, n_heads: int, dropout: float) -> None:
        super().__init__()
        self.n_heads = n_heads
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.qkv, self.out = nn.Linear(dim, 3 * dim), nn.Linear(dim, dim)
        self.ffn = nn.Sequential(
            nn.Linear(dim, 2 * dim),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(2 * dim, dim),
        )
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: Tensor, weight: Tensor, blocked: Tensor) -> Tensor:
        """Attend: x (B, L, dim), each key's weight (B, L), blocked (L, L) pairs."""
        b, length, dim = x.shape
        q, k, v = (
            self.qkv(self.norm1(x))
            .view(b, length, 3, self.n_heads, dim // self.n_heads)
            .permute(2, 0, 3, 1, 4)
        )  # each (B, heads, L, dim / heads)
        scores = (q @ k.transpose(-1, -2)) * (dim // self.n_heads) ** -0.5
        keys = weight[:, None, None, :]  # (B, 1, 1, L)
        scores = scores.masked_fill(blocked | (keys == 0), float("-inf"))
        top = scores.amax(-1, keepdim=True).detach()  # finite: the CLS key
        scores = (scores - top).exp() * keys
        attention = self.dropout(scores / scores.sum(-1, keepdim=True))
        mixed = (attention @ v).transpose(1, 2).reshape(b, length, dim)
        x = x + self.dropout(self.out(mixed))
        return x + self.dropout(self.ffn(self.norm2(x)))
