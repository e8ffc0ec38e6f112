"""WideDeep: the wide part's logits plus a head over the fused deep parts."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from torch import Tensor, nn

from widemm.models.fusion import Fusion
from widemm.models.layers import Encoder
from widemm.models.wide import Wide


class WideDeep(nn.Module):
    """Wide logits plus a linear head over the fused deep embeddings.

    Parameters
    ----------
    encoders : mapping of str to Encoder
        Deep parts by slot: ``"tab"``, ``"text_0"``, ``"image_0"``, ...
    fusion : Fusion
        Joins the encoders' outputs.
    n_outputs : int
        Logits per row.
    wide : Wide, optional
        Linear part over one-hot indices; its logits are added to the head's.
    """

    def __init__(
        self,
        encoders: Mapping[str, Encoder],
        fusion: Fusion,
        n_outputs: int,
        wide: Wide | None = None,
    ) -> None:
        super().__init__()
        self.encoders = nn.ModuleDict(encoders)
        self.fusion, self.wide = fusion, wide
        self.head = nn.Linear(fusion.output_dim, n_outputs)

    def forward(self, batch: Mapping[str, Any]) -> Tensor:
        """Return logits of shape (batch_size, n_outputs)."""
        embeddings = {k: enc(batch[k]) for k, enc in self.encoders.items()}
        logits = self.head(self.fusion(embeddings, batch.get("present", {})))
        return logits if self.wide is None else logits + self.wide(batch["wide"])
