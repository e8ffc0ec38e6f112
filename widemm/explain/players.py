"""Players of the attribution game: one per DataFrame column, the wide part, the trees.

A fitted estimator's model inputs are a nested mapping of tensors (``wide``,
``tab/cat``, ``tab/cont``, ``text_0/...``, ``image_0/...``). Each leaf belongs to
one player (a text, image, wide or trees slot is one player) or, for the
tabular leaves, one player per column of the leaf.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from widemm.pipeline import FeaturePipeline

WIDE, TREES = "wide", "trees"


@dataclass(frozen=True)
class Players:
    """Names of the players and the player of each input leaf (or its columns).

    Attributes
    ----------
    names : list of str
        DataFrame columns in input order, then ``"wide"`` and ``"trees"`` when
        the model has them.
    leaves : dict of tuple to int or Tensor
        Path of each input leaf -> its player, or a (n_columns,) tensor of players.
    """

    names: list[str]
    leaves: dict[tuple[str, ...], int | Tensor]

    @classmethod
    def of(
        cls, pipeline: FeaturePipeline, columns: list[str], inputs: Mapping[str, Any]
    ) -> Players:
        """Players of a fitted pipeline's deep columns (in ``columns`` order).

        ``inputs`` are the pipeline's model inputs.
        """
        schema = pipeline.schema_
        order = [c for c in columns if c in schema.deep_cols]
        parts = [slot for slot in (WIDE, TREES) if slot in inputs]
        names = [*order, *parts]
        index = {name: i for i, name in enumerate(names)}
        leaves: dict[tuple[str, ...], int | Tensor] = {
            (slot,): index[slot] for slot in parts
        }
        if "tab" in inputs:
            cat, cont = pipeline.preprocessors_["tab"].feature_columns()
            leaves[("tab", "cat")] = torch.tensor(
                [index[c] for c in cat], dtype=torch.long
            )
            leaves[("tab", "cont")] = torch.tensor(
                [index[c] for c in cont], dtype=torch.long
            )
        slots = {**schema.text_slots, **schema.image_slots}
        for slot, col in slots.items():
            for path, _ in iter_leaves(inputs[slot], (slot,)):
                leaves[path] = index[col]
        return cls(names, leaves)

    def slot_player(self, slot: str) -> int:
        """Return the player of a whole slot (``"wide"``, ``"text_0"``, ...)."""
        player = next(v for p, v in self.leaves.items() if p[0] == slot)
        assert isinstance(player, int)
        return player

    def mix(self, x: Mapping[str, Any], base: Mapping[str, Any], z: Tensor) -> Any:
        """Batch taking each player's inputs from ``x`` where ``z`` is 1, else ``base``.

        ``x`` and ``base`` are batches of R rows, ``z`` is (R, n_players).
        """
        out: dict[str, Any] = {}
        for path, player in self.leaves.items():
            keep = z[:, player].bool()
            xv, bv = _get(x, path), _get(base, path)
            keep = keep.reshape(*keep.shape, *[1] * (xv.ndim - keep.ndim))
            _set(out, path, torch.where(keep, xv, bv))
        return out


def iter_leaves(value: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple, Any]]:
    """Yield (path, tensor) for every tensor of a nested mapping."""
    if isinstance(value, Mapping):
        for k, v in value.items():
            yield from iter_leaves(v, (*path, k))
    else:
        yield path, value


def _get(value: Any, path: tuple[str, ...]) -> Tensor:
    for k in path:
        value = value[k]
    return value


def _set(out: dict[str, Any], path: tuple[str, ...], value: Tensor) -> None:
    for k in path[:-1]:
        out = out.setdefault(k, {})
    out[path[-1]] = value
