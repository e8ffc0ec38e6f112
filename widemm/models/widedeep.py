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
        """Return logits of shape (batch_size, n_outputs).

        A slot may hold ``"present"`` (B,) bool, False where its input is absent
        (missing text, unreadable image). A slot holding ``"embedding"``
        (B, output_dim), the cached output of a frozen encoder (see
        ``widemm.training.cache``), skips its encoder.
        """
        embeddings = {
            k: batch[k]["embedding"] if "embedding" in batch[k] else enc(batch[k])
            for k, enc in self.encoders.items()
        }
        present = {
            k: batch[k]["present"] for k in self.encoders if "present" in batch[k]
        }
        logits = self.head(self.fusion(embeddings, present))
        return logits if self.wide is None else logits + self.wide(batch["wide"])
