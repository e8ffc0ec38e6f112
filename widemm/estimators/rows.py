"""The rows a fit reads: checked, its run planned, and which of them validate.

``read_rows`` checks a fit's inputs (a frame, or a parquet path to stream) and plans its
run before any random draw; ``last_rows`` tells whether the last rows validate (rows in
time order: ``time_ordered``). ``Estimator`` is what fitting reads and sets of the
estimator it fits.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any, Literal, Protocol

import numpy as np
import pandas as pd
import torch

from widemm.data import FrameDataset
from widemm.estimators.params import run_settings
from widemm.estimators.pretraining import Pretrained
from widemm.execution import log_line
from widemm.models import WideDeep
from widemm.pipeline import FeaturePipeline
from widemm.streaming import ParquetStream
from widemm.targets import Target
from widemm.training import TrainConfig
from widemm.training.callbacks import Callback
from widemm.training.checkpoint import frame_digest, plan_run
from widemm.training.objective import Objective
from widemm.validation import check_frame, check_sample_weight


class Estimator(Protocol):
    """What fitting reads and sets of the estimator it fits."""

    targets_: list[Target]
    pipeline_: FeaturePipeline
    model_: WideDeep
    validation_fraction: float
    batch_size: int | Literal["auto"]
    max_epochs: int | Literal["auto"]
    callbacks: Sequence[Callback] | None
    checkpoint_dir: str | os.PathLike[str] | None
    verbose: int
    trees: bool | str
    pretrained: Pretrained | None
    stream_chunk_rows: int
    stream_sample_rows: int

    def get_params(self, deep: bool = True) -> dict[str, Any]: ...

    def _check_y(self, y: Any, X: pd.DataFrame) -> Any: ...

    def _encode(self, y: Any) -> torch.Tensor: ...

    def _dataset(self, X: Any, y: Any = None) -> FrameDataset: ...

    def _config(self, **fixed: Any) -> TrainConfig: ...

    def _objective(self) -> Objective: ...


@dataclass
class Plan:
    """A run decided before any random draw: identity, seed, state to resume."""

    run: dict[str, str]  # the fingerprint of its settings and data
    seed: int
    state: dict[str, Any] | None  # a checkpoint of this run, to resume
    settings: dict[str, Any]
    ids: dict[str, str]  # the data's


@dataclass
class Rows:
    """The rows a fit trains on (a stream's sample, for a stream) and its options."""

    X: pd.DataFrame
    y: Any
    weight: np.ndarray | None
    eval_set: tuple[Any, Any] | None
    stream: ParquetStream | None


def read_rows(
    estimator: Estimator,
    X: Any,
    y: Any,
    eval_set: tuple[Any, Any] | None,
    sample_weight: Any,
) -> tuple[Rows, Plan]:
    """Check a fit's inputs (a frame, or a parquet path to stream), plan its run.

    The run is planned (``plan_run``) before any random draw: nothing
    downstream decides the seed again. A stream's rows are its sample (which
    fits the preprocessors); its chunks are then read as training batches.
    Rows of weight 0 are dropped.
    """
    stream = weight = None
    if isinstance(X, str | os.PathLike):
        stream = ParquetStream.open(X, y, estimator.stream_chunk_rows, sample_weight)
        names = y
        ids = {
            "data": stream.identity(),
            "target": repr(y),
            "weight": repr(sample_weight),
        }
    else:
        X = check_frame(estimator, X, reset=True)
        y = estimator._check_y(y, X)
        weight = check_sample_weight(sample_weight, X)
        ids = {
            "data": frame_digest(X),
            "target": frame_digest(pd.DataFrame(y)),
            "weight": frame_digest(pd.Series(weight)),
        }
    settings = run_settings(estimator.get_params(deep=False))
    plan = Plan(*plan_run(estimator.checkpoint_dir, settings, ids), settings, ids)
    if stream is not None:
        sample = stream.sample(estimator.stream_sample_rows, plan.seed)
        inputs = sample.drop(columns=_names(names, sample_weight))
        X = check_frame(estimator, inputs, reset=True)
        weights = None if sample_weight is None else sample[sample_weight]
        weight = check_sample_weight(weights, X)
        y = estimator._check_y(sample[names], X)
        stream.transform = partial(
            _stream_batch, estimator, target=names, weight=sample_weight
        )
    if weight is not None and not weight.all():  # 0 weighs as a dropped row
        keep = weight > 0
        X, y, weight = X[keep], y[keep], weight[keep]
    if len(X) < 2:
        raise ValueError(f"X has {len(X)} sample; fitting needs at least 2 rows.")
    return Rows(X, y, weight, eval_set, stream), plan


def _stream_batch(
    estimator: Estimator, frame: pd.DataFrame, target: Any, weight: str | None
) -> dict[str, Any]:
    """Turn a chunk of a stream into training inputs, target and weights."""
    X = frame.drop(columns=_names(target, weight))
    data = estimator._dataset(X, frame[target])
    if weight is not None:
        data.inputs["weight"] = torch.from_numpy(check_sample_weight(frame[weight], X))
    return estimator.pipeline_.training_inputs(data.inputs, estimator.model_)


def _names(target: str | list[str], weight: str | None) -> list[str]:
    """Return the columns of a streamed chunk that are not inputs."""
    names = [target] if isinstance(target, str) else list(target)
    return names if weight is None else [*names, weight]


def last_rows(estimator: Estimator, pipeline: FeaturePipeline, X: pd.DataFrame) -> bool:
    """Tell whether the last rows validate: X's rows are in time order."""
    order = pipeline.time_order(X)
    if order is not None and estimator.validation_fraction > 0:
        log_line(
            "The rows are in time order (%s): the last validate.",
            order,
            verbose=estimator.verbose,
        )
    return order is not None
