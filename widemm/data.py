"""Datasets over prebuilt tensors; a DataLoader draws whole batches at once."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any, Protocol, runtime_checkable

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import (
    BatchSampler,
    DataLoader,
    Dataset,
    Sampler,
    SequentialSampler,
)

Batch = dict[str, Any]  # slot -> Tensor or {name: Tensor}; "target", "present"


@runtime_checkable
class LazyColumn(Protocol):
    """A column decoded only when rows are taken (images): ``column[rows]``."""

    def __len__(self) -> int: ...

    def __getitem__(self, rows: Tensor | slice) -> dict[str, Tensor]: ...

    def subset(self, rows: Tensor) -> LazyColumn:
        """Return the column of ``rows`` only, nothing decoded."""
        ...

    def row_keys(self) -> list[bytes]:
        """Return one key per row that changes whenever the row's content does."""
        ...


class EpochBatches(Protocol):
    """One epoch of training batches per iteration; ``set_epoch(e)`` before each."""

    def __iter__(self) -> Iterator[Batch]: ...

    def __len__(self) -> int: ...

    def set_epoch(self, epoch: int) -> None: ...


class TrainData(Protocol):
    """What the Trainer trains on: in-memory rows or a stream of them."""

    def loader(
        self,
        batch_size: int,
        seed: int,
        rank: int = 0,
        world_size: int = 1,
        num_workers: int = 0,
    ) -> EpochBatches:
        """Shuffled batches of ``batch_size`` rows over all ranks (see make_loader)."""
        ...


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
    return value.subset(index) if isinstance(value, LazyColumn) else value[index]


def to_device(batch: Any, device: torch.device) -> Any:
    """Move a batch (tensors in nested dicts or lists) to ``device``."""
    if isinstance(batch, Mapping):
        return {k: to_device(v, device) for k, v in batch.items()}
    if isinstance(batch, list):
        return [to_device(v, device) for v in batch]
    return batch.to(device, non_blocking=True) if isinstance(batch, Tensor) else batch


class FrameDataset(Dataset[Batch]):
    """Rows of model inputs; indexing with a list of rows returns a whole batch.

    Parameters
    ----------
    inputs : mapping
        Slot -> tensor of shape (n_rows, ...) or a mapping of such tensors, or any
        object indexable by a list of rows (e.g. lazily decoded images).
    target : Tensor, optional
        Shape (n_rows,) or (n_rows, n_target_columns).
    weight : Tensor, optional
        Shape (n_rows,): each row's weight in the loss.
    """

    def __init__(
        self,
        inputs: Mapping[str, Any],
        target: Tensor | None = None,
        weight: Tensor | None = None,
    ) -> None:
        self.inputs = dict(inputs)
        if target is not None:
            self.inputs["target"] = target
        if weight is not None:
            self.inputs["weight"] = weight
        self.n_rows = len(target) if target is not None else n_rows(self.inputs)

    def __len__(self) -> int:
        return self.n_rows

    def __getitem__(self, rows: list[int] | slice) -> Batch:
        index = rows if isinstance(rows, slice) else torch.as_tensor(rows).long()
        return take(self.inputs, index)

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

    def split(
        self, fraction: float, seed: int, stratify: bool, last: bool = False
    ) -> tuple[FrameDataset, FrameDataset | None, np.ndarray]:
        """Hold out ``fraction`` of the rows: (rest, held out or None, their rows).

        The rows held out are drawn at random, or are the last ones with
        ``last`` (rows in time order validate on the latest). ``stratify`` keeps
        a random draw's class shares in both parts when every class has rows
        enough.
        """
        from sklearn.model_selection import train_test_split

        n_valid = round(fraction * len(self))
        if n_valid < 1 or len(self) - n_valid < 1:
            return self, None, np.zeros(0, dtype=np.int64)
        target = self.inputs["target"].numpy()
        classes = target.reshape(len(target), -1)[:, 0] if stratify else None
        if classes is not None:
            counts = np.unique(target, return_counts=True)[1]
            if counts.min() < 2 or min(n_valid, len(self) - n_valid) < len(counts):
                classes = None  # too few rows per class to stratify
        train_rows, valid_rows = train_test_split(
            np.arange(len(self)),
            test_size=n_valid,
            random_state=seed,
            shuffle=not last,
            stratify=None if last else classes,
        )
        return (
            self.subset(torch.from_numpy(train_rows)),
            self.subset(torch.from_numpy(valid_rows)),
            valid_rows,
        )


def n_rows(inputs: Mapping[str, Any]) -> int:
    """Rows of a batch: the length of its first tensor (-1 when it has none)."""
    for value in inputs.values():
        n = n_rows(value) if isinstance(value, Mapping) else len(value)
        if n >= 0:
            return n
    return -1  # no tensor at all


def rank_share(
    order: Tensor, batch_size: int, rank: int, world_size: int
) -> Iterator[Tensor]:
    """Yield rank ``rank``'s share of each global batch of the rows in ``order``.

    ``order`` is cut into global batches of ``batch_size`` rows, of which rank
    ``r`` of ``world_size`` takes rows ``r, r + world_size, ...``: the ranks'
    k-th shares together are exactly the k-th batch of one process, no row
    padded or duplicated (a share can be smaller, even empty, in the last one).
    """
    for start in range(0, len(order), batch_size):
        yield order[start : start + batch_size][rank::world_size]


class GlobalBatches(Sampler[list[int]]):
    """Rank ``rank``'s share of every shuffled global batch of ``batch_size`` rows.

    Epoch ``e`` permutes the rows with seed ``seed + e``; each rank takes its
    ``rank_share`` of every global batch; the Trainer weighs the loss by the
    global row count.
    """

    def __init__(
        self, n_rows: int, batch_size: int, seed: int, rank: int, world_size: int
    ) -> None:
        self.n_rows, self.batch_size, self.seed = n_rows, batch_size, seed
        self.rank, self.world_size, self.epoch = rank, world_size, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self) -> Iterator[list[int]]:
        g = torch.Generator().manual_seed(self.seed + self.epoch)
        order = torch.randperm(self.n_rows, generator=g)
        for share in rank_share(order, self.batch_size, self.rank, self.world_size):
            yield share.tolist()

    def __len__(self) -> int:
        return -(-self.n_rows // self.batch_size)


class EpochLoader(DataLoader[Batch]):
    """A DataLoader whose shuffling depends on the epoch only (``set_epoch``)."""

    def set_epoch(self, epoch: int) -> None:
        if isinstance(self.sampler, GlobalBatches):
            self.sampler.set_epoch(epoch)


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

    ``batch_size`` counts the rows of a batch over all ``world_size`` ranks; when
    shuffling, each rank gets its share of every global batch (``GlobalBatches``).
    """
    batches: Iterable[list[int]] = (
        GlobalBatches(len(dataset), batch_size, seed, rank, world_size)
        if shuffle
        else BatchSampler(SequentialSampler(dataset), batch_size, drop_last=False)
    )
    return EpochLoader(
        dataset,
        sampler=batches,
        batch_size=None,
        num_workers=num_workers,
    )
