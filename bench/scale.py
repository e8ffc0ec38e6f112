"""Training at scale: throughput vs batch size and workers; memory when streaming.

    python bench/scale.py              # every candidate, JSON lines
    python bench/scale.py --run NAME   # one candidate in this process

- throughput: one epoch of the default Adult model's Trainer over the training
  split, for batch sizes 64..4096 and 0, 1 or 2 DataLoader workers: rows/s.
- memory_*: one epoch of `WideDeepClassifier().fit` on Adult resampled to 250k
  or 1M rows, written to parquet; `in_memory` reads the file with pandas and fits
  the DataFrame, `streamed` passes the path (chunks of 65,536 rows). Peak RSS of
  the process, each in a fresh one.
"""

from __future__ import annotations

import time
from pathlib import Path

import pandas as pd
from common import cli, emit, split

from widemm.datasets import load_adult

CACHE = Path(__file__).resolve().parent / ".cache"
SIZES = {"250k": 250_000, "1m": 1_000_000}
CANDIDATES = [
    "throughput",
    *(f"memory_{kind}_{size}" for size in SIZES for kind in ("in_memory", "streamed")),
]


def resampled(size: str) -> Path:
    """Adult resampled (with replacement, seed 0) to SIZES[size] rows, as parquet."""
    path = CACHE / f"adult_{size}.parquet"
    if not path.exists():
        CACHE.mkdir(exist_ok=True)
        df = load_adult()
        df.sample(SIZES[size], replace=True, random_state=0).to_parquet(
            path, index=False, row_group_size=65_536
        )
    return path


def throughput() -> None:
    import torch

    from widemm import WideDeepClassifier
    from widemm.data import FrameDataset
    from widemm.training import TrainConfig, Trainer

    X_train, _, y_train, _ = split("adult", "income")
    model = WideDeepClassifier(max_epochs=1, random_state=0).fit(X_train, y_train)
    target = torch.from_numpy((y_train == ">50K").to_numpy().astype("float32"))
    data = FrameDataset(model.pipeline_.inputs(X_train, model.model_), target)
    for batch_size in (64, 256, 1024, 4096):
        for workers in (0, 1, 2):
            config = TrainConfig(
                objective="binary",
                max_epochs=1,
                batch_size=batch_size,
                num_workers=workers,
                random_state=0,
            )
            start = time.perf_counter()
            Trainer(config).fit(model.model_, data)
            seconds = time.perf_counter() - start
            emit(
                {
                    "bench": "scale",
                    "model": f"batch {batch_size}, workers {workers}",
                    "batch_size": batch_size,
                    "num_workers": workers,
                    "train_rows_per_s": len(data) / seconds,
                }
            )


def memory(kind: str, size: str) -> None:
    from widemm import WideDeepClassifier

    path = resampled(size)
    model = WideDeepClassifier(max_epochs=1, validation_fraction=0.0, random_state=0)
    start = time.perf_counter()
    if kind == "streamed":
        model.fit(path, "income")
    else:
        df = pd.read_parquet(path)
        model.fit(df.drop(columns="income"), df["income"])
    emit(
        {
            "bench": "scale",
            "model": f"fit 1 epoch, {size} rows, {kind.replace('_', ' ')}",
            "train_rows": SIZES[size],
            "fit_seconds": time.perf_counter() - start,
        }
    )


def run(name: str) -> None:
    if name == "throughput":
        throughput()
    else:
        kind, size = name.removeprefix("memory_").rsplit("_", 1)
        memory(kind, size)


if __name__ == "__main__":
    cli(__file__, __doc__, CANDIDATES, run, "scale")
