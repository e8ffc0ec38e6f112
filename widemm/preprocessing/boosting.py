"""LightGBM for the trees inside the model: its models, settings and folds."""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

# Per head, as the model lays out its outputs: (kind, target columns, classes,
# outputs per target column), e.g. ("regression", 2, 0, 3) for two columns of 3
# quantiles each.
Layout = tuple[str, int, int, int]

LARGE = 10_000  # rows from which the trees learn at rate 0.1
MANY_INPUTS = 10  # inputs from which each tree sees half of them
FEW_ROWS_PER_INPUT = 50  # below it, each split's threshold is drawn at random


def tree_models(layout: Sequence[Layout]) -> list[tuple[int, str, int, list[int]]]:
    """Return per tree model: target column, objective, width, outputs.

    A tree model per target column of the heads' ``layout``; the width of its
    raw scores (a multiclass model's classes, else 1) and the model outputs it
    scores.
    """
    models, column, output = [], 0, 0
    for kind, n_targets, n_classes, per in layout:
        if kind == "multiclass":
            outputs = list(range(output, output + n_classes))
            models.append((column, "multiclass", n_classes, outputs))
            column, output = column + 1, output + n_classes
            continue
        objective = "regression" if kind == "regression" else "binary"
        for j in range(n_targets):
            outputs = list(range(output + j * per, output + (j + 1) * per))
            models.append((column + j, objective, 1, outputs))
        column, output = column + n_targets, output + n_targets * per
    return models


def as_outputs(raw: np.ndarray, width: int, outputs: list[int]) -> np.ndarray:
    """Return raw scores (n,) or (n, width) as the ``outputs`` columns.

    A regression column's one score is repeated for each of its quantiles.
    """
    raw = raw.reshape(len(raw), width)
    return np.repeat(raw, len(outputs) // width, axis=1)


def auto_settings(n_rows: int, n_inputs: int) -> dict[str, Any]:
    """LightGBM settings that ``"auto"`` gives ``n_rows`` rows of ``n_inputs`` inputs.

    Each measured with the whole model's test metric:

    - ``learning_rate``: 0.1 from ``LARGE`` rows, else 0.05. 0.1 against 0.05
      gave Adult ROC AUC 0.9291 against 0.9288 and California R² 0.8568
      against 0.8548, in 0.6-1 s less, but diabetes R² 0.448 against 0.463 and
      digits 0.9705 against 0.9744 (a tenth of 1,000 rows stops the faster rate
      too late or too early).
    - ``feature_fraction`` (the share of inputs each tree grows on): 0.5 from
      ``MANY_INPUTS`` inputs, else 1. 0.5 against 1: digits 0.9794 against
      0.9744, diabetes R² 0.464 against 0.463, Adult 0.9300 against 0.9291,
      breast cancer 0.9925 against 0.9941; on California's 8 inputs 0.854
      against 0.857 (half the trees would lack the median income). Row
      subsampling (bagging 0.8) lost California 0.006 R².
    - ``extra_trees`` (a random threshold per input at each split, Geurts et
      al. 2006): below ``FEW_ROWS_PER_INPUT`` rows per input, where searching
      every threshold fits noise. Mean of seeds 0-2, 5-fold cross-validation:
      digits (22 rows per input) 0.9811 against 0.9766, diabetes (35) R² 0.469
      against 0.461 (seeds 0-1), wine and breast cancer (11, 15) level; on
      1,500 training rows of California (187) R² 0.748 against 0.761, of Adult
      (107) 0.9034 against 0.9027; from 5,000 rows both lost 0.003-0.02.
    """
    return {
        "learning_rate": 0.1 if n_rows >= LARGE else 0.05,
        "feature_fraction": 0.5 if n_inputs >= MANY_INPUTS else 1.0,
        "extra_trees": n_rows < FEW_ROWS_PER_INPUT * n_inputs,
    }


def lgb_params(
    objective: str, width: int, shape: tuple[int, int], settings: dict[str, Any]
) -> dict[str, Any]:
    """Return LightGBM's parameters for one tree model of ``width`` raw scores.

    ``settings``: LightGBM's settings, ``"auto"`` ones resolved by
    ``auto_settings`` for ``shape`` (training rows, inputs).
    """
    auto = auto_settings(*shape)
    params = {k: auto[k] if v == "auto" else v for k, v in settings.items()}
    params |= {
        "objective": objective,
        "deterministic": True,
        "force_row_wise": True,
        "verbose": -1,
    }
    if objective == "multiclass":
        params["num_class"] = width
    return params


def train_folds(
    params: dict[str, Any],
    data: Any,
    folds: list[np.ndarray],
    rng: np.random.Generator | None,
    n_estimators: int,
    early_stopping: int,
) -> list[Any]:
    """Train a LightGBM model on each fold's rows of ``data`` (a ``lgb.Dataset``).

    Each stops after ``early_stopping`` rounds without gain on a tenth of its rows
    held out, drawn from ``rng`` fold by fold (the same tenths however the folds
    run), or, without ``rng`` (rows in time order), its last tenth: rows drawn from
    among the ones it trains on would be their neighbours' near twins, and stop too
    late. Folds train side by side, each on its share of the cores: on 2 cores,
    California's 5 folds took 0.82 s this way against 1.18 s one after another with
    2 threads each, giving the same models.
    """
    import lightgbm as lgb

    splits = []
    for rows in folds:
        n_stop = max(len(rows) // 10, 1)
        if rng is None:
            splits.append((rows[:-n_stop], rows[-n_stop:]))
            continue
        shuffled = rng.permutation(rows)
        splits.append((np.sort(shuffled[n_stop:]), np.sort(shuffled[:n_stop])))
    n_cores = cores()
    workers = min(len(folds), n_cores)
    threads = {"num_threads": max(n_cores // workers, 1)}
    params = {**params, **threads}
    # LightGBM keeps one thread count for the whole process, which every call
    # given parameters sets (none given: all cores). A subset cut without it
    # while another fold's model sized its per-thread buffers made that model
    # run more threads than it has buffers: a segfault (2 in 2 minute-long runs
    # of a subset and a model side by side; none in 90 s with the same count).
    cut = {**data.params, **threads}
    binning = threading.Lock()  # subsets are cut from one Dataset in turn

    def fit(train: np.ndarray, stop: np.ndarray) -> Any:
        with binning:
            train_set = data.subset(train, cut).construct()
            stop_set = data.subset(stop, cut).construct()
        return lgb.train(
            params,
            train_set,
            num_boost_round=n_estimators,
            valid_sets=[stop_set],
            callbacks=[lgb.early_stopping(early_stopping, verbose=False)],
        )

    with ThreadPoolExecutor(workers) as pool:
        return list(pool.map(lambda parts: fit(*parts), splits))


def cores() -> int:
    """Return the CPU cores this process may run on."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1
