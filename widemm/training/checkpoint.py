"""Checkpoints of a whole training run, written atomically, and resuming from them.

A checkpoint holds everything the rest of the run depends on: the model's
weights, the optimizer's, LR scheduler's and gradient scaler's states, the
callbacks' states (early stopping's best weights, ...), the history, the
number of epochs done and the seed. Shuffling and dropout in epoch ``e`` are
seeded from ``(seed, e)`` alone (see ``Trainer``), so a run resumed after epoch
``e`` draws exactly what the uninterrupted run drew, and ends with the same
weights.

Files are written to a temporary name in the same folder, flushed to disk and
renamed over the old file (``os.replace`` is atomic), so a crash at any moment
leaves either the previous checkpoint or the new one, never half of one.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from widemm.training.callbacks import Callback

if TYPE_CHECKING:
    from widemm.training.trainer import Trainer

LAST, BEST = "last.pt", "best.pt"


def atomic_save(state: Any, path: str | Path) -> None:
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


def training_state(trainer: Trainer, model: nn.Module) -> dict[str, Any]:
    """Everything needed to continue ``trainer``'s run after the current epoch."""
    return {
        "model": model.state_dict(),
        "optimizer": trainer.optimizer.state_dict(),
        "scaler": trainer.scaler.state_dict(),
        "callbacks": {
            key: cb.state_dict()
            for key, cb in _keyed(trainer.active_callbacks).items()
            if hasattr(cb, "state_dict")
        },
        "history": trainer.history,
        "epochs_done": len(trainer.history),
        "seed": trainer.seed,
    }


def load(path: str | Path, device: torch.device) -> dict[str, Any]:
    """Read a checkpoint (tensors, numbers and containers only: no code runs)."""
    return torch.load(path, map_location=device, weights_only=True)


def restore(
    trainer: Trainer, model: nn.Module, state: dict[str, Any], path: str | Path
) -> int:
    """Put checkpoint ``state`` (read from ``path``) into ``trainer`` and ``model``.

    Returns the number of epochs done.
    """
    if state["seed"] != trainer.seed:
        raise ValueError(
            f"Checkpoint {path} was written by a run with seed {state['seed']}, "
            f"this run has seed {trainer.seed}: its data order would differ."
        )
    model.load_state_dict(state["model"])
    trainer.optimizer.load_state_dict(state["optimizer"])
    trainer.scaler.load_state_dict(state["scaler"])
    for key, cb in _keyed(trainer.active_callbacks).items():
        if key in state["callbacks"]:
            cb.load_state_dict(state["callbacks"][key])  # type: ignore[attr-defined]
    trainer.history = list(state["history"])
    return int(state["epochs_done"])


def _keyed(callbacks: list[Callback]) -> dict[str, Callback]:
    """Callbacks by class name and rank among their class: EarlyStopping:0, ..."""
    keys: dict[str, Callback] = {}
    for cb in callbacks:
        name = type(cb).__name__
        keys[f"{name}:{sum(k.startswith(name + ':') for k in keys)}"] = cb
    return keys


class ModelCheckpoint(Callback):
    """Save the run after each epoch (``last.pt``) and at its best (``best.pt``).

    ``Trainer.fit(..., resume_from=folder / "last.pt")`` continues from
    ``last.pt``; an estimator with ``checkpoint_dir`` does so by itself. Only
    rank 0 writes in a distributed run.

    Parameters
    ----------
    dirpath : str or Path
        Folder of the checkpoints.
    monitor : str
        History column whose minimum marks the best epoch (when present).
    save_best : bool
        Also keep the best epoch's state.
    """

    def __init__(
        self, dirpath: str | Path, monitor: str = "valid_loss", save_best: bool = True
    ) -> None:
        self.dirpath, self.monitor, self.save_best = Path(dirpath), monitor, save_best
        self.best = float("inf")

    def on_epoch_end(
        self, trainer: Trainer, model: nn.Module, row: dict[str, Any]
    ) -> None:
        value = row.get(self.monitor)
        better = value is not None and value < self.best
        if better:
            self.best = float(value)  # type: ignore[arg-type]
        if not trainer.distributed.is_main:
            return
        state = training_state(trainer, model)
        atomic_save(state, self.dirpath / LAST)
        if self.save_best and better:
            atomic_save(state, self.dirpath / BEST)

    def state_dict(self) -> dict[str, Any]:
        return {"best": self.best}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.best = state["best"]
