"""Fusion layers: join the deep parts' embeddings into one vector per row.

Every fusion takes any number of modalities (slots such as ``tab``, ``text_0``,
``image_0``), each an embedding of its own size, plus presence masks:

- ``concat``: concatenate, then an MLP.
- ``sum``: project each to a common size and add.
- ``film``: one modality (``condition``, the tabular one by default) produces a
  per-feature scale and shift for each of the others (FiLM).
- ``gated``: a gated multimodal unit: each modality proposes tanh(W e), and a
  softmax over modalities, per feature and computed from all of them, weighs the
  proposals (for two modalities this is the sigmoid gate of one over the other).
- ``attention``: a small transformer over one token per modality (with a
  modality-type embedding) and a CLS token whose final state is the output;
  absent modalities are masked out of the attention.
- ``cross_attention``: the same over each modality's short token sequence (text
  segments, image feature-map cells, the tabular part's output), where a token
  attends to the other modalities' tokens and the CLS token, not to its own
  modality's; the CLS token attends to all.
"""

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

    Parameters
    ----------
    input_dims : mapping of str to int
        Embedding size per slot.
    modality_dropout : float
        While training, each slot of each row is treated as absent with this
        probability, so the model learns not to lean on one modality alone.
    """

    output_dim: int
    taps: nn.ModuleDict
    # False for a fusion that masks absent slots out instead of filling them in:
    # it then holds no "absent" embeddings (they would never get a gradient).
    fills_absent = True
    # True for a fusion that reads each slot's tokens (see ``WideDeep.tokens``).
    uses_tokens = False

    def __init__(self, input_dims: Mapping[str, int], modality_dropout: float = 0.0):
        super().__init__()
        self.slots = sorted(input_dims)
        self.modality_dropout = modality_dropout
        slots = self.slots if self.fills_absent else []
        self.absent = nn.ParameterDict(
            {k: nn.Parameter(torch.zeros(input_dims[k])) for k in slots}
        )
        # Identity taps on each slot's filled embedding: the layers that
        # gradient explanations attribute to (see ``widemm.explain``).
        self.taps = nn.ModuleDict({k: nn.Identity() for k in self.slots})

    def presence(
        self, embeddings: Mapping[str, Tensor], present: Mapping[str, Tensor]
    ) -> dict[str, Tensor]:
        """Return a (B,) bool mask per slot, with modality dropout while training."""
        masks = {}
        for k in self.slots:
            emb = embeddings[k]
            mask = present.get(
                k, torch.ones(emb.shape[0], dtype=torch.bool, device=emb.device)
            )
            if self.training and self.modality_dropout > 0:
                keep = torch.rand(len(emb), device=emb.device) >= self.modality_dropout
                mask = mask & keep
            masks[k] = mask
        return masks

    def prepare(
        self, embeddings: Mapping[str, Tensor], present: Mapping[str, Tensor]
    ) -> tuple[list[Tensor], dict[str, Tensor]]:
        """Return the embeddings in slot order with absent rows replaced, and masks."""
        masks = self.presence(embeddings, present)
        filled = []
        for k in self.slots:
            e = embeddings[k]
            fill = self.absent[k].to(e.dtype) if self.fills_absent else e.new_zeros(())
            filled.append(self.taps[k](torch.where(masks[k][:, None], e, fill)))
        return filled, masks


class ConcatFusion(Fusion):
    """Concatenate the embeddings, then an MLP.

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
    modality_dropout : float
        See :class:`Fusion`.
    """

    def __init__(
        self,
        input_dims: Mapping[str, int],
        *,
        hidden_dims: Sequence[int] = (256,),
        dropout: float = 0.2,
        modality_dropout: float = 0.0,
    ) -> None:
        super().__init__(input_dims, modality_dropout)
        self.mlp = MLP(sum(input_dims.values()), hidden_dims, dropout)
        self.output_dim = self.mlp.output_dim

    def forward(
        self, embeddings: Mapping[str, Tensor], present: Mapping[str, Tensor]
    ) -> Tensor:
        filled, _ = self.prepare(embeddings, present)
        return self.mlp(torch.cat(filled, dim=1))


class _Projected(Fusion):
    """A fusion that first projects every slot to ``dim`` features."""

    def __init__(
        self,
        input_dims: Mapping[str, int],
        dim: int,
        dropout: float,
        modality_dropout: float,
    ) -> None:
        super().__init__(input_dims, modality_dropout)
        self.project = nn.ModuleDict(
            {
                k: nn.Sequential(nn.Linear(input_dims[k], dim), nn.Dropout(dropout))
                for k in self.slots
            }
        )

    def projected(
        self, embeddings: Mapping[str, Tensor], present: Mapping[str, Tensor]
    ) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
        """Return each slot's projection (absent rows filled first), and the masks."""
        filled, masks = self.prepare(embeddings, present)
        pairs = zip(self.slots, filled, strict=True)
        return {k: self.project[k](e) for k, e in pairs}, masks


class SumFusion(_Projected):
    """Project each slot to ``dim`` features and add them, then ReLU.

    Parameters
    ----------
    input_dims : mapping of str to int
        Embedding size per slot.
    dim : int
        Common size, and ``output_dim``.
    dropout : float
        Dropout after each projection.
    modality_dropout : float
        See :class:`Fusion`.
    """

    def __init__(
        self,
        input_dims: Mapping[str, int],
        *,
        dim: int = 256,
        dropout: float = 0.2,
        modality_dropout: float = 0.0,
    ) -> None:
        super().__init__(input_dims, dim, dropout, modality_dropout)
        self.output_dim = dim

    def forward(
        self, embeddings: Mapping[str, Tensor], present: Mapping[str, Tensor]
    ) -> Tensor:
        projected, _ = self.projected(embeddings, present)
        return torch.relu(torch.stack(list(projected.values())).sum(0))


class FiLMFusion(_Projected):
    """The ``condition`` slot scales and shifts each other slot's features (FiLM).

    Each other slot k becomes ``h_k * (1 + gamma_k(c)) + beta_k(c)``, with h_k its
    projection and c the condition's embedding; the output concatenates the
    condition's projection and the modulated slots, then ReLU.

    Parameters
    ----------
    input_dims : mapping of str to int
        Embedding size per slot.
    condition : str, optional
        The modulating slot; by default ``"tab"`` when present, else the first.
    dim : int
        Size of every projection; ``output_dim`` is ``dim * n_slots``.
    dropout : float
        Dropout after each projection.
    modality_dropout : float
        See :class:`Fusion`.
    """

    def __init__(
        self,
        input_dims: Mapping[str, int],
        *,
        condition: str | None = None,
        dim: int = 128,
        dropout: float = 0.2,
        modality_dropout: float = 0.0,
    ) -> None:
        super().__init__(input_dims, dim, dropout, modality_dropout)
        self.condition = condition or ("tab" if "tab" in input_dims else self.slots[0])
        if self.condition not in input_dims:
            raise ValueError(
                f"condition {self.condition!r} is not one of {self.slots}."
            )
        others = [k for k in self.slots if k != self.condition]
        film = {k: nn.Linear(input_dims[self.condition], 2 * dim) for k in others}
        for layer in film.values():  # start as the identity modulation
            nn.init.zeros_(layer.weight)
            nn.init.zeros_(layer.bias)
        self.film = nn.ModuleDict(film)
        self.output_dim = dim * len(self.slots)

    def forward(
        self, embeddings: Mapping[str, Tensor], present: Mapping[str, Tensor]
    ) -> Tensor:
        filled, _ = self.prepare(embeddings, present)
        condition = filled[self.slots.index(self.condition)]
        projected = {
            k: self.project[k](e) for k, e in zip(self.slots, filled, strict=True)
        }
        parts = [projected[self.condition]]
        for k, film in self.film.items():
            gamma, beta = film(condition).chunk(2, dim=1)
            parts.append(projected[k] * (1 + gamma) + beta)
        return torch.relu(torch.cat(parts, dim=1))


class GatedFusion(Fusion):
    """Gated multimodal unit (Arevalo et al., 2017) for any number of slots.

    Each slot proposes ``tanh(W_k e_k)``; gates ``softmax_k(G [e_1, ..., e_n])``,
    one per slot and feature, weigh the proposals, which are then summed.

    Parameters
    ----------
    input_dims : mapping of str to int
        Embedding size per slot.
    dim : int
        Size of the proposals, and ``output_dim``.
    dropout : float
        Dropout on the output.
    modality_dropout : float
        See :class:`Fusion`.
    """

    def __init__(
        self,
        input_dims: Mapping[str, int],
        *,
        dim: int = 256,
        dropout: float = 0.2,
        modality_dropout: float = 0.0,
    ) -> None:
        super().__init__(input_dims, modality_dropout)
        self.propose = nn.ModuleDict(
            {k: nn.Linear(input_dims[k], dim) for k in self.slots}
        )
        self.gate = nn.Linear(sum(input_dims.values()), dim * len(self.slots))
        self.dropout = nn.Dropout(dropout)
        self.dim = self.output_dim = dim

    def forward(
        self, embeddings: Mapping[str, Tensor], present: Mapping[str, Tensor]
    ) -> Tensor:
        filled, _ = self.prepare(embeddings, present)
        proposals = torch.stack(
            [
                torch.tanh(self.propose[k](e))
                for k, e in zip(self.slots, filled, strict=True)
            ],
            dim=1,
        )  # (B, n_slots, dim)
        gates = self.gate(torch.cat(filled, dim=1)).view(-1, len(self.slots), self.dim)
        return self.dropout((gates.softmax(dim=1) * proposals).sum(1))


class _WithCLS(_Projected):
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


FUSIONS: dict[str, Callable[..., Fusion]] = {
    "attention": AttentionFusion,
    "cross_attention": CrossAttentionFusion,
    "concat": ConcatFusion,
    "film": FiLMFusion,
    "gated": GatedFusion,
    "sum": SumFusion,
}


def make_fusion(
    spec: str | Callable[..., Fusion], input_dims: Mapping[str, int], **params: Any
) -> Fusion:
    """Build a fusion by name (see ``FUSIONS``) or from a callable."""
    return resolve(spec, FUSIONS, "fusion")(input_dims, **params)
