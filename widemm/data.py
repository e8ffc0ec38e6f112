"""Datasets over prebuilt tensors; a DataLoader draws whole batches at once."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor
from torch.utils.data import (
    BatchSampler,
    DataLoader,
    Dataset,
    DistributedSampler,
    Sampler,
    SequentialSampler,
)

Batch = dict[str, Any]  # slot -> Tensor or {name: Tensor}; "target", "present"


def take(value: Any, index: Tensor | slice) -> Any:
    """Rows ``index`` of a tensor, or of every tensor in a (nested) mapping."""
    if isinstance(value, Mapping):
        return {k: take(v, index) for k, v in value.items()}
    return value[index]


def concat(a: Mapping[str, Any], b: Mapping[str, Any]) -> dict[str, Any]:
    """Rows of batch ``a`` followed by rows of batch ``b``."""
    return {
        k: concat(a[k], b[k]) if isinstance(a[k], Mapping) else torch.cat([a[k], b[k]])
        for k in a
    }


def select(value: Any, index: Tensor) -> Any:
    """Like ``take``, but lazy columns (images) return a smaller column, undecoded."""
    if isinstance(value, Mapping):
        return {k: select(v, index) for k, v in value.items()}
    return value.subset(index) if hasattr(value, "subset") else value[index]


def to_device(batch: Any, device: torch.device) -> Any:
    """Move a batch (tensors in nested dicts) to ``device``."""
    if isinstance(batch, Mapping):
        return {k: to_device(v, device) for k, v in batch.items()}
    return batch.to(device, non_blocking=True) if isinstance(batch, Tensor) else batch


class FrameDataset(Dataset[Batch]):
    """Rows of model inputs; indexing with a list of rows returns a whole batch.

    Parameters
    ----------
    inputs : mapping
        Slot -> tensor of shape (n_rows, ...) or a mapping of such tensors, or any
        object indexable by a list of rows (e.g. lazily decoded images).
    target : Tensor, optional
        Shape (n_rows,).
    """

    def __init__(self, inputs: Mapping[str, Any], target: Tensor | None = None) -> None:
        self.inputs = dict(inputs)
        if target is not None:
            self.inputs["target"] = target
        self.n_rows = len(target) if target is not None else n_rows(self.inputs)

    def __len__(self) -> int:
        return self.n_rows

    def __getitem__(self, rows: list[int] | slice) -> Batch:
        return take(
            self.inputs, rows if isinstance(rows, slice) else torch.as_tensor(rows)
        )

    def loader(
        self,
        batch_size: int,
        seed: int,
        rank: int = 0,
        world_size: int = 1,
        num_workers: int = 0,
    ) -> EpochLoader:
        """Shuffled training batches; ``set_epoch(e)`` before each epoch."""
        return make_loader(
            self,
            batch_size,
            shuffle=True,
            seed=seed,
            rank=rank,
            world_size=world_size,
            num_workers=num_workers,
        )

    def subset(self, rows: Tensor) -> FrameDataset:
        """Return a new dataset holding only ``rows``."""
        return FrameDataset(select(self.inputs, rows))


def n_rows(inputs: Mapping[str, Any]) -> int:
    """Rows of a batch: the length of its first tensor (-1 when it has none)."""
    for value in inputs.values():
        n = n_rows(value) if isinstance(value, Mapping) else len(value)
        if n >= 0:
            return n
    return -1  # no tensor at all


class EpochLoader(DataLoader[Batch]):
    """A DataLoader whose shuffling depends on the epoch only (``set_epoch``)."""

    def set_epoch(self, epoch: int) -> None:
        self.sampler.sampler.set_epoch(epoch)  # type: ignore[attr-defined]


def make_loader(
    dataset: FrameDataset,
    batch_size: int,
    *,
    shuffle: bool,
    seed: int = 0,
    rank: int = 0,
    world_size: int = 1,
    num_workers: int = 0,
) -> EpochLoader:
    """Return a DataLoader of whole batches: one fancy-index each, no per-row work.

    Shuffled rows come from a ``DistributedSampler``: epoch ``e`` (``set_epoch``)
    permutes the rows with seed ``seed + e`` and rank ``r`` of ``world_size``
    takes every ``world_size``-th row from ``r`` on, so the ranks' k-th batches
    together are the k-th batch of a single process.
    """
    rows: Sampler[int] = (
        DistributedSampler(
            dataset, num_replicas=world_size, rank=rank, shuffle=True, seed=seed
        )
        if shuffle
        else SequentialSampler(dataset)
    )
    sampler = BatchSampler(rows, batch_size, drop_last=False)
    return EpochLoader(
        dataset, sampler=sampler, batch_size=None, num_workers=num_workers
    )
