"""WideDeep: the wide part's logits plus one head per task over the fused deep parts."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor, nn

from widemm.models.fusion import Fusion
from widemm.models.layers import Encoder, Tokenized, fast_dropouts
from widemm.models.wide import TreeLogits, Wide


class WideDeep(nn.Module):
    """Wide logits plus a linear head per task over the fused deep embeddings.

    Parameters
    ----------
    encoders : mapping of str to Encoder
        Deep parts by slot: ``"tab"``, ``"text_0"``, ``"image_0"``, ...
    fusion : Fusion
        Joins the encoders' outputs.
    heads : mapping of str to int
        Logits of each task (in the order of the model's logits): a linear head
        each, over the one fused embedding all tasks share.
    wide : Wide, optional
        Linear part over one-hot indices with as many logits as all heads
        together; its logits are added to theirs.
    projection_dim : int, optional
        When set, each encoder's output goes through a linear projection to this
        size before the fusion (the space contrastive pretraining aligns; see
        ``widemm.training.contrastive``); the fusion then takes inputs of this size.
    trees : TreeLogits, optional
        Gradient-boosted trees' scores (the ``"trees"`` input) added to the
        logits. The heads then start at zero: training starts where the trees
        end, and the deep parts learn what they miss.
    """

    def __init__(
        self,
        encoders: Mapping[str, Encoder],
        fusion: Fusion,
        heads: Mapping[str, int],
        wide: Wide | None = None,
        projection_dim: int | None = None,
        trees: TreeLogits | None = None,
    ) -> None:
        super().__init__()
        self.encoders = nn.ModuleDict(encoders)
        self.fusion, self.wide, self.trees = fusion, wide, trees
        self.projections = nn.ModuleDict(
            {}
            if projection_dim is None
            else {
                k: nn.Linear(e.output_dim, projection_dim) for k, e in encoders.items()
            }
        )
        self.heads = nn.ModuleDict(
            {name: nn.Linear(fusion.output_dim, n) for name, n in heads.items()}
        )
        if trees is not None:
            for head in self.heads.values():
                assert isinstance(head, nn.Linear)
                nn.init.zeros_(head.weight)
                nn.init.zeros_(head.bias)
        fast_dropouts(self)

    def embed(
        self, batch: Mapping[str, Any]
    ) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
        """Each slot's embedding (projected, when the model projects) and presence.

        A slot holding ``"embedding"`` (B, output_dim), the cached output of a
        frozen encoder (see ``widemm.cache``), skips its encoder. ``present``
        holds the (B,) bool masks of slots whose input may be absent. With a
        fusion over tokens, a slot's embedding is the mean of its tokens.
        """
        present = {
            k: batch[k]["present"] for k in self.encoders if "present" in batch[k]
        }
        if self.fusion.uses_tokens:
            tokens, masks = self.tokens(batch)
            weights = {k: m.unsqueeze(-1).to(tokens[k].dtype) for k, m in masks.items()}
            pooled = {
                k: (t * weights[k]).sum(-2) / weights[k].sum(-2).clamp(min=1)
                for k, t in tokens.items()
            }
            return pooled, present
        embeddings = {
            k: batch[k]["embedding"] if "embedding" in batch[k] else enc(batch[k])
            for k, enc in self.encoders.items()
        }
        for k, projection in self.projections.items():
            embeddings[k] = projection(embeddings[k])
        return embeddings, present

    def tokens(
        self, batch: Mapping[str, Any]
    ) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
        """Each slot's tokens (B, T, d) (projected, when the model projects) and mask.

        A ``Tokenized`` encoder gives its tokens, or the slot holds them cached
        (``"tokens"``, ``"token_mask"``); any other gives its output as one
        token: an ensemble's (TabM's) members averaged, since folding them into
        rows would repeat every other slot's tokens k times (then the members
        learn as one network). The (B, T) masks are False for padding and for
        all of an absent input's tokens.
        """
        tokens, masks = {}, {}
        for k, encoder in self.encoders.items():
            x = batch[k]
            if "tokens" in x:
                t, mask = x["tokens"].float(), x["token_mask"]
            elif isinstance(encoder, Tokenized):
                t, mask = encoder.tokens(x)
            else:
                t = x["embedding"] if "embedding" in x else encoder(x)
                t = (t.mean(1) if t.dim() == 3 else t)[:, None]
                mask = torch.ones(t.shape[:2], dtype=torch.bool, device=t.device)
            if "present" in x:
                mask = mask & x["present"][:, None]
            tokens[k] = self.projections[k](t) if k in self.projections else t
            masks[k] = mask
        return tokens, masks

    def fused(self, batch: Mapping[str, Any]) -> Tensor:
        """Return the fusion's output for the batch (see :meth:`fuse`)."""
        if self.fusion.uses_tokens:
            return self.fuse(*self.tokens(batch))
        return self.fuse(*self.embed(batch))

    def fuse(self, embeddings: dict[str, Tensor], present: dict[str, Tensor]) -> Tensor:
        """Fuse :meth:`embed`'s (or :meth:`tokens`') outputs into (B, output_dim).

        With an ensemble encoder (TabM's (B, k, dim)), each member is fused with
        the other slots' embeddings: (B, k, fusion.output_dim).
        """
        k = max((e.shape[1] for e in embeddings.values() if e.dim() == 3), default=0)
        if self.fusion.uses_tokens or not k:
            return self.fusion(embeddings, present)
        flat = {  # the k members side by side as rows
            s: e.flatten(0, 1) if e.dim() == 3 else e.repeat_interleave(k, 0)
            for s, e in embeddings.items()
        }
        mask = {s: p.repeat_interleave(k, 0) for s, p in present.items()}
        return self.fusion(flat, mask).unflatten(0, (-1, k))

    def forward(self, batch: Mapping[str, Any]) -> Tensor:
        """Return logits of shape (batch_size, n_outputs), the heads' side by side.

        With an ensemble encoder (one returning (B, k, dim), as ``TabM``), every
        member's logits while training, (batch_size, k, n_outputs), and their
        mean in eval mode.

        A slot may hold ``"present"`` (B,) bool, False where its input is absent
        (missing text, unreadable image). A slot holding ``"embedding"``
        (B, output_dim), the cached output of a frozen encoder, skips its encoder
        (see :meth:`embed`).
        """
        fused = self.fused(batch)
        logits = torch.cat(
            [head(fused.flatten(0, -2)) for head in self.heads.values()], 1
        )
        if fused.dim() == 3:
            logits = logits.unflatten(0, fused.shape[:2])
            logits = logits if self.training else logits.mean(1)
        for part, slot in ((self.wide, "wide"), (self.trees, "trees")):
            if part is not None:
                out = part(batch[slot])
                logits = logits + (out.unsqueeze(1) if logits.dim() == 3 else out)
        return logits
