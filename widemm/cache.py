"""Encode each distinct input of a frozen encoder once, and reuse the result.

Training on a frozen backbone (a pretrained text or image model) only needs its
outputs, which do not change: the cache computes them once, in batches sorted by
length, under ``torch.inference_mode``; encoders whose ``bf16_safe`` is True (the
transformers text backbones) through a bfloat16 copy of their weights where the
device runs bfloat16 in hardware (``widemm.execution.native_bf16``). Measured on
1,000 real reviews (``bench/reviews.py``), a frozen MiniLM encodes 1.9x as fast
as in float32 with embeddings within cosine 0.9999 (bf16 autocast, which recasts
the weights at every call: 1.8x; int8 dynamic quantisation: cosine 0.93).
The model then trains on the cached embeddings, so epochs after the first cost
almost nothing. Entries are keyed by
slot and by the encoder's input row (its bytes; for an image file its path, size
and modification time), so predicting on new rows encodes only the rows never
seen before. Each slot keeps at most ``max_rows`` entries, the least recently
used dropped first: predicting on ever new rows does not grow memory forever.

For a fusion over tokens the cache keeps each row's tokens instead (text
segments, image cells; see ``widemm.models.layers.Tokenized``), in float16:
(tokens per row) x ``output_dim`` x 2 bytes, e.g. 8 segments of a frozen MiniLM
pooled over 4 layers take 24.6 KB a row, 3 x 3 cells of MobileNetV2 23 KB.
"""

from __future__ import annotations

import copy
import time
import weakref
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from widemm.data import LazyColumn, n_rows, take, to_device
from widemm.execution import log_line, native_bf16, progress
from widemm.models.layers import Tokenized


def is_frozen(encoder: nn.Module) -> bool:
    """Tell whether no parameter of ``encoder`` trains (so outputs can be cached)."""
    return not any(p.requires_grad for p in encoder.parameters())


class FeatureCache:
    """Outputs of frozen encoders by slot, computed once per distinct input row.

    Parameters
    ----------
    batch_size : int
        Rows per forward pass when encoding.
    device : torch.device or str
        Where the encoder runs.
    verbose : int
        Show a progress bar while encoding (on a terminal).
    max_rows : int
        Entries kept per slot (least recently used dropped first). 100,000 rows
        of a frozen MiniLM pooled over 4 layers (1,536 floats) take 600 MB; as
        tokens (8 segments in float16), 2.5 GB.
    bf16 : bool or None
        Encode with a bfloat16 copy of encoders whose ``bf16_safe`` is True
        (made once per encoder and weights); None: where the device runs bf16
        in hardware. Outputs are stored as float32 (tokens as float16) either
        way.
    """

    def __init__(
        self,
        batch_size: int = 64,
        device: torch.device | str = "cpu",
        verbose: int = 0,
        max_rows: int = 100_000,
        bf16: bool | None = None,
    ) -> None:
        self.batch_size, self.device = batch_size, torch.device(device)
        self.verbose, self.max_rows = verbose, max_rows
        self.bf16 = native_bf16(self.device) if bf16 is None else bf16
        # (slot, tokens?) -> key -> {"embedding" or "tokens", "token_mask";
        # "present"}, one row each, oldest use first
        self.entries: dict[tuple[str, bool], OrderedDict[bytes, dict[str, Tensor]]]
        self.entries = {}
        # encoder -> (its weights' versions, its bf16 copy), while it lives
        self._bf16_copies: weakref.WeakKeyDictionary[
            nn.Module, tuple[tuple[int, ...], nn.Module]
        ] = weakref.WeakKeyDictionary()

    def __call__(
        self,
        slot: str,
        encoder: nn.Module,
        x: Any,
        name: str | None = None,
        tokens: bool = False,
    ) -> dict[str, Tensor]:
        """Return ``{"embedding": (n_rows, output_dim), "present": (n_rows,)}`` of x.

        Only rows whose input is not cached for this slot are encoded. ``x`` is the
        slot's input: tensors (a mapping of them), or a ``LazyColumn`` (images,
        decoded only when encoded); ``name`` (its column) is what progress names.
        With ``tokens``, the encoder's ``tokens(x)`` instead: ``{"tokens":
        (n_rows, T, output_dim) float16, "token_mask": (n_rows, T), "present"}``.
        """
        keys = x.row_keys() if isinstance(x, LazyColumn) else _row_keys(x)
        known = self.entries.setdefault((slot, tokens), OrderedDict())
        new: dict[bytes, int] = {}  # key -> first row holding it
        for i, key in enumerate(keys):
            if key not in known and key not in new:
                new[key] = i
        fresh: dict[bytes, dict[str, Tensor]] = {}
        if new:
            rows = torch.tensor(list(new.values()))
            what = f"{name or slot!r} with {type(encoder).__name__}"
            log_line("encoding %s: %d rows", what, len(rows), verbose=self.verbose)
            start = time.perf_counter()
            outputs = self._encode(encoder, x, rows, what, tokens)
            seconds = time.perf_counter() - start
            log_line(
                "encoded %s in %.1f s (%.0f rows/s)",
                what,
                seconds,
                len(rows) / max(seconds, 1e-9),
                verbose=self.verbose,
            )
            fresh = {
                k: {name: v[j] for name, v in outputs.items()}
                for j, k in enumerate(new)
            }
        entries = [fresh[k] if k in fresh else known[k] for k in keys]
        for key in dict.fromkeys(keys):  # mark as used, newest last
            if key in known:
                known.move_to_end(key)
        known.update(fresh)
        while len(known) > self.max_rows:
            known.popitem(last=False)
        return {name: torch.stack([e[name] for e in entries]) for name in entries[0]}

    def _encode(
        self, encoder: nn.Module, x: Any, rows: Tensor, what: str, tokens: bool
    ) -> dict[str, Tensor]:
        """Encode ``rows`` of x, longest first; results in the order of ``rows``."""
        order = torch.argsort(_lengths(x)[rows], descending=True, stable=True)
        encoder.to(self.device).eval()
        if self.bf16 and getattr(encoder, "bf16_safe", False):
            encoder = self._in_bf16(encoder)
        parts: list[dict[str, Tensor]] = []
        starts = range(0, len(rows), self.batch_size)
        with torch.inference_mode():
            for start in progress(
                starts, verbose=self.verbose > 0, desc=f"encoding {what}"
            ):
                at = order[start : start + self.batch_size]  # positions in rows
                batch = to_device(take(x, rows[at]), self.device)
                if tokens:
                    assert isinstance(encoder, Tokenized)
                    states, mask = encoder.tokens(batch)
                    out = {"tokens": states.half(), "token_mask": mask}
                else:
                    out = {"embedding": encoder(batch).float()}
                has = isinstance(batch, Mapping) and "present" in batch
                out["present"] = (
                    batch["present"] if has else torch.ones(len(at), dtype=torch.bool)
                )
                parts.append({k: v.cpu() for k, v in out.items()})
        back = torch.argsort(order)  # from encoding order to the order of rows
        return {k: torch.cat([p[k] for p in parts])[back] for k in parts[0]}

    def _in_bf16(self, encoder: nn.Module) -> nn.Module:
        """Return a bfloat16 copy of ``encoder``, made again when its weights change."""
        weights = (*encoder.parameters(), *encoder.buffers())
        versions = tuple(t._version for t in weights)
        held = self._bf16_copies.get(encoder)
        if held is None or held[0] != versions:
            held = (versions, copy.deepcopy(encoder).to(torch.bfloat16))
            self._bf16_copies[encoder] = held
        return held[1]


def _row_keys(x: Any) -> list[bytes]:
    parts = [t.numpy() for t in _tensors(x)]
    n = len(parts[0])
    flat = np.concatenate(
        [np.ascontiguousarray(p).reshape(n, -1).view(np.uint8) for p in parts], axis=1
    )
    return [row.tobytes() for row in flat]


def _tensors(x: Any) -> list[Tensor]:
    if isinstance(x, Mapping):
        return [t for k in sorted(x) for t in _tensors(x[k])]
    return [x]


def _lengths(x: Any) -> Tensor:
    """Tokens per row when there is an attention mask, so batches pad little."""
    if isinstance(x, Mapping) and "attention_mask" in x:
        return x["attention_mask"].sum(1)
    return torch.zeros(n_rows(x) if isinstance(x, Mapping) else len(x))
