"""Training data read from parquet in chunks, for data larger than memory.

``ParquetStream`` reads a parquet file, or a folder of them, ``chunk_rows`` rows
at a time with pyarrow; only one chunk (and its tensors) is in memory at once.
A first streaming pass draws a uniform sample of rows, on which the estimator
fits its preprocessors and from which it takes its validation rows; training
epochs then stream every other row, shuffled within each chunk (and
neighbouring chunks swapped at random), in batches. Images stay paths until
their batch is drawn.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from widemm.data import Batch, rank_share, take

Transform = Callable[[pd.DataFrame], dict[str, Any]]


class ParquetStream:
    """Chunks of a parquet data set, and batches of model inputs drawn from them.

    Parameters
    ----------
    path : str or Path
        A parquet file or a folder of ``*.parquet`` files (read in name order).
    chunk_rows : int
        Rows read and transformed at a time: bounds memory.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        chunk_rows: int = 65536,
        transform: Callable[[pd.DataFrame], Batch] | None = None,
    ) -> None:
        import pyarrow.parquet as pq

        path = Path(path)
        files = sorted(path.glob("*.parquet")) if path.is_dir() else [path]
        if not files or not all(f.exists() for f in files):
            raise FileNotFoundError(f"No parquet file at {path}.")
        self.files, self.chunk_rows = files, chunk_rows
        self.file_rows = [pq.ParquetFile(f).metadata.num_rows for f in files]
        self.columns = list(pq.ParquetFile(files[0]).schema_arrow.names)
        self.n_rows = sum(self.file_rows)
        self.skip = np.zeros(0, dtype=np.int64)  # rows held out (validation)
        self.transform = transform  # chunk DataFrame -> batch of model inputs

    @classmethod
    def open(
        cls,
        path: str | os.PathLike[str],
        target: Any,
        chunk_rows: int,
        weight: Any = None,
    ) -> ParquetStream:
        """Open ``path`` to train on column(s) ``target`` (and ``weight``).

        Raises an error saying what is wrong when a column is missing.
        """
        names = [target] if isinstance(target, str) else target
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise TypeError(
                "Fitting from a parquet path takes y= the name of the target column "
                f"(or a list of names), got {type(target).__name__}."
            )
        if weight is not None and not isinstance(weight, str):
            raise TypeError(
                "Fitting from a parquet path takes sample_weight= the name of the "
                f"weight column, got {type(weight).__name__}."
            )
        stream = cls(path, chunk_rows)
        for name, what in [*((n, "Target") for n in names), (weight, "Weight")]:
            if name is not None and name not in stream.columns:
                raise ValueError(
                    f"{what} column {name!r} is not in {path}; its columns: "
                    f"{stream.columns}."
                )
        return stream

    def identity(self) -> str:
        """Return the files' names, sizes and modification times (an id of the data)."""
        return repr(
            [(str(f), f.stat().st_size, f.stat().st_mtime_ns) for f in self.files]
        )

    def chunks(self) -> Iterator[tuple[int, pd.DataFrame]]:
        """Yield (first global row, DataFrame) for each chunk, in file order."""
        import pyarrow.parquet as pq

        start = 0
        for f in self.files:
            for batch in pq.ParquetFile(f).iter_batches(batch_size=self.chunk_rows):
                frame = batch.to_pandas()
                frame.index = pd.RangeIndex(start, start + len(frame))
                yield start, frame
                start += len(frame)

    def sample(self, n: int, seed: int) -> pd.DataFrame:
        """Draw a uniform random sample of ``n`` rows (all when fewer), in one pass."""
        rng = np.random.default_rng(seed)
        chosen = np.sort(rng.choice(self.n_rows, min(n, self.n_rows), replace=False))
        parts = []
        for start, frame in self.chunks():
            rows = chosen[(chosen >= start) & (chosen < start + len(frame))]
            parts.append(frame.loc[rows])
        return pd.concat(parts)

    def batches(
        self,
        batch_size: int,
        epoch: int,
        seed: int,
        rank: int = 0,
        world_size: int = 1,
    ) -> Iterator[Batch]:
        """Yield training batches (rows not in ``skip``), shuffled with (seed, epoch).

        Each chunk's permutation is cut into global batches of ``batch_size``
        rows, of which each rank takes its ``widemm.data.rank_share``.
        """
        g = torch.Generator().manual_seed(seed + epoch)
        for _, frame in self._shuffled_chunks(g):
            keep = ~np.isin(frame.index.to_numpy(), self.skip)
            inputs = self.transform(frame[keep])  # type: ignore[misc]
            order = torch.randperm(int(keep.sum()), generator=g)
            for share in rank_share(order, batch_size, rank, world_size):
                yield take(inputs, share)

    def loader(
        self,
        batch_size: int,
        seed: int,
        rank: int = 0,
        world_size: int = 1,
        num_workers: int = 0,
    ) -> StreamLoader:
        """Return the epochs' batches as the Trainer iterates them.

        ``num_workers`` is accepted for the common signature of training data;
        chunks are read and transformed in this process.
        """
        if self.transform is None:
            raise ValueError("Set the stream's transform (chunk -> batch) first.")
        return StreamLoader(self, batch_size, seed, rank, world_size)

    def n_batches(self, batch_size: int) -> int:
        """Batches per epoch (on every rank), from the chunks and held-out rows."""
        total, start = 0, 0
        for rows in self.file_rows:
            for first in range(start, start + rows, self.chunk_rows):
                last = min(first + self.chunk_rows, start + rows)
                held_out = (self.skip >= first) & (self.skip < last)
                total += -(-(last - first - int(held_out.sum())) // batch_size)
            start += rows
        return total

    def _shuffled_chunks(
        self, g: torch.Generator
    ) -> Iterator[tuple[int, pd.DataFrame]]:
        """Chunks with each pair of neighbours swapped at random (two in memory)."""
        window: list[tuple[int, pd.DataFrame]] = []
        for item in self.chunks():
            window.append(item)
            if len(window) == 2:  # two chunks in memory: their order is mixed
                yield window.pop(int(torch.randint(2, (), generator=g)))
        yield from window


class StreamLoader:
    """One epoch of a ParquetStream's batches per iteration (``set_epoch`` first)."""

    def __init__(
        self,
        stream: ParquetStream,
        batch_size: int,
        seed: int,
        rank: int,
        world_size: int,
    ) -> None:
        self.stream, self.batch_size = stream, batch_size
        self.seed, self.rank, self.world_size, self.epoch = seed, rank, world_size, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self) -> Iterator[Batch]:
        return self.stream.batches(
            self.batch_size,
            self.epoch,
            self.seed,
            self.rank,
            self.world_size,
        )

    def __len__(self) -> int:
        return self.stream.n_batches(self.batch_size)
