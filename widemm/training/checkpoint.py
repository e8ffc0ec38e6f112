"""Checkpoints of a whole training run, written atomically, and read back.

A checkpoint (``Trainer.state_dict()``) holds everything the rest of the run
depends on: the model's weights, the optimizer's, LR scheduler's and gradient
scaler's states, the callbacks' states (early stopping's best weights and
patience, ...), the history, whether the run stopped, its seed and what
identifies the run. Shuffling and dropout in epoch ``e`` are seeded from
``(seed, e)`` alone (see ``Trainer``), so a run resumed after epoch ``e`` draws
exactly what the uninterrupted run drew, and ends with the same weights.

Files are written to a temporary name in the same folder, flushed to disk and
renamed over the old file (``os.replace`` is atomic), so a crash at any moment
leaves either the previous checkpoint or the new one, never half of one.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from sklearn.utils import check_random_state

LAST, BEST = "last.pt", "best.pt"


def atomic_save(state: Any, path: str | os.PathLike[str]) -> None:
    """``torch.save`` to ``path`` through a temporary file and a rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(state, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load_checkpoint(
    path: str | os.PathLike[str], device: torch.device | str = "cpu"
) -> dict[str, Any]:
    """Read a checkpoint (tensors, numbers and containers only: no code runs)."""
    return torch.load(path, map_location=device, weights_only=True)


def plan_run(
    checkpoint_dir: str | os.PathLike[str] | None,
    settings: Mapping[str, Any],
    data: Mapping[str, str],
) -> tuple[dict[str, str], int, dict[str, Any] | None]:
    """Decide a run's identity, seed and whether it resumes: (run, seed, state).

    The run is its ``settings`` (``random_state`` among them) and ``data`` ids
    (see ``fingerprint``). A checkpoint of the same run in ``checkpoint_dir`` is
    resumed with its own seed (also when ``random_state`` is None); otherwise the
    seed comes from ``random_state``.
    """
    run = fingerprint(settings, data)
    state = resume_state(checkpoint_dir, run)
    if state is not None:
        return run, int(state["seed"]), state
    rng = check_random_state(settings.get("random_state"))
    return run, int(rng.randint(2**31 - 1)), None


def resume_state(
    checkpoint_dir: str | os.PathLike[str] | None, run: Mapping[str, str]
) -> dict[str, Any] | None:
    """Return the state to resume: ``last.pt`` of ``checkpoint_dir``, if of ``run``.

    ``run`` identifies a run (see ``fingerprint``). A checkpoint of another run is
    never resumed: a warning names what changed, and the new run starts fresh
    (overwriting that checkpoint as it goes).
    """
    if checkpoint_dir is None or not (Path(checkpoint_dir) / LAST).exists():
        return None
    path = Path(checkpoint_dir) / LAST
    state = load_checkpoint(path)
    old = state.get("run", {})
    if old == dict(run):
        return state
    changed = [
        f"{k}: {old.get(k, '(none)')} -> {run.get(k, '(none)')}"
        for k in sorted(set(old) | set(run))
        if old.get(k) != run.get(k)
    ]
    warnings.warn(
        f"{path} holds the checkpoint of another run ({'; '.join(changed[:6])}"
        f"{'; ...' if len(changed) > 6 else ''}). Starting fresh; it will be "
        "overwritten.",
        UserWarning,
        stacklevel=3,
    )
    return None


def fingerprint(params: Mapping[str, Any], data: Mapping[str, str]) -> dict[str, str]:
    """Identify a run: each setting (``param:name``) and the ``data``'s ids."""
    out = {f"param:{k}": _describe(v) for k, v in sorted(params.items())}
    return {**out, **data}


def frame_digest(frame: pd.DataFrame | pd.Series) -> str:
    """Digest a table's values (row order included), column names and dtypes."""
    try:
        hashes = pd.util.hash_pandas_object(frame, index=False).to_numpy()
    except TypeError:  # unhashable cells (lists, arrays, images): hash their text
        hashes = pd.util.hash_pandas_object(frame.astype(str), index=False).to_numpy()
    digest = hashlib.blake2b(hashes.tobytes(), digest_size=16)
    if isinstance(frame, pd.DataFrame):
        digest.update(repr(list(frame.dtypes.astype(str).items())).encode())
    return digest.hexdigest()


def _describe(value: Any) -> str:
    """Describe a setting stably: callables by name (their repr holds an address)."""
    if callable(value) and hasattr(value, "__qualname__"):
        return f"{value.__module__}.{value.__qualname__}"
    return repr(value)
