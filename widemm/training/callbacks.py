"""Callbacks: hooks the Trainer calls around epochs and optimizer steps.

Write your own by subclassing :class:`Callback` and overriding any hook. The
trainer passed to each hook (see :class:`Run`) exposes ``optimizer``,
``history``, ``epoch`` (0-based, the current one), ``steps_per_epoch``,
``config``, ``should_stop`` (set it to end training after the current epoch)
and ``validate(model)`` (the model's losses and metrics on the validation rows).
A callback with ``state_dict()`` and ``load_state_dict()`` (:class:`Stateful`)
has its state saved in checkpoints and restored on resume.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal, Protocol, runtime_checkable

import torch
from torch import nn

from widemm.models.layers import Backbone
from widemm.training.checkpoint import BEST, LAST, atomic_save
from widemm.training.distributed import Distributed


class Run(Protocol):
    """What a callback sees of the Trainer running it."""

    config: Any
    history: list[dict[str, float]]
    epoch: int
    steps_per_epoch: int
    should_stop: bool
    distributed: Distributed

    @property
    def optimizer(self) -> torch.optim.Optimizer: ...

    def state_dict(self) -> dict[str, Any]:
        """Return the whole run's state (see ``widemm.training.checkpoint``)."""
        ...

    def validate(self, model: nn.Module) -> dict[str, float]:
        """Return ``model``'s losses and metrics on the run's validation rows."""
        ...


@runtime_checkable
class Stateful(Protocol):
    """A callback whose state is saved in checkpoints and restored on resume."""

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: dict[str, Any]) -> None: ...


class Callback:
    """Base of the callbacks; every hook does nothing unless overridden."""

    def on_fit_start(self, trainer: Run, model: nn.Module) -> None:
        """Before the first epoch (and before a checkpoint is restored)."""

    def on_epoch_start(self, trainer: Run, model: nn.Module) -> None:
        """Before each epoch; ``trainer.epoch`` is its 0-based number."""

    def on_step_end(self, trainer: Run, model: nn.Module, loss: float) -> None:
        """After each optimizer step, with the last micro-batch's loss."""

    def on_epoch_end(self, trainer: Run, model: nn.Module, row: dict[str, Any]) -> None:
        """After each epoch, with that epoch's history row."""

    def on_fit_end(self, trainer: Run, model: nn.Module) -> None:
        """After the last epoch."""


class EarlyStopping(Callback):
    """Stop when ``monitor`` has not improved for ``patience`` epochs; restore the best.

    With ``average``, also keep the mean of the best epoch's weights and of the
    epochs trained after it (the patience's), and restore that mean instead when
    its ``monitor`` on the validation rows (``trainer.validate``) is lower than
    the best epoch's. Weights a few steps apart around one minimum lie on its
    sides; their mean can sit lower than each (stochastic weight averaging).

    Parameters
    ----------
    patience : int
        Epochs without improvement before stopping.
    monitor : str
        History column to minimise.
    min_delta : float
        Smallest decrease that counts as an improvement.
    average : bool
        Try the mean of the best and the later epochs' weights.

    Attributes
    ----------
    best_epoch : int
        The best epoch's number (1-based; 0 before any).
    averaged : int
        How many epochs' weights the restored model is the mean of (1: the
        best epoch's alone).
    kept_figures : dict of str to float
        The validation losses and metrics of the weights restored.
    """

    def __init__(
        self,
        patience: int = 5,
        monitor: str = "valid_loss",
        min_delta: float = 0.0,
        average: bool = False,
    ):
        self.patience, self.monitor, self.min_delta = patience, monitor, min_delta
        self.average = average

    def on_fit_start(self, trainer: Run, model: nn.Module) -> None:
        self.best, self.best_epoch, self.wait, self.averaged = float("inf"), 0, 0, 1
        self.best_state: dict[str, torch.Tensor] | None = None
        self.mean_state: dict[str, torch.Tensor] | None = None
        self.n_mean = 0
        self.kept_figures: dict[str, float] = {}

    def on_epoch_end(self, trainer: Run, model: nn.Module, row: dict[str, Any]) -> None:
        state = model.state_dict()
        if row[self.monitor] < self.best - self.min_delta:
            self.best, self.best_epoch, self.wait = row[self.monitor], row["epoch"], 0
            self.best_state = _copy(state)
            if self.average:
                self.mean_state, self.n_mean = _copy(state), 1
        else:
            self.wait += 1
            trainer.should_stop = self.wait >= self.patience
            if self.mean_state is not None:
                self.n_mean += 1
                _move_mean(self.mean_state, state, self.n_mean)

    def on_fit_end(self, trainer: Run, model: nn.Module) -> None:
        if self.best_state is None:
            return
        self.kept_figures = trainer.history[self.best_epoch - 1]
        if self.mean_state is not None and self.n_mean > 1:
            model.load_state_dict(self.mean_state)
            mean = trainer.validate(model)
            if mean[self.monitor] < self.best:
                self.averaged, self.kept_figures = self.n_mean, mean
                return
        model.load_state_dict(self.best_state)

    def state_dict(self) -> dict[str, Any]:
        keys = ("best", "best_epoch", "wait", "best_state", "mean_state", "n_mean")
        return {k: getattr(self, k) for k in keys}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for k, v in state.items():
            setattr(self, k, v)


def _copy(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v.detach().to("cpu", copy=True) for k, v in state.items()}


def _move_mean(
    mean: dict[str, torch.Tensor], state: dict[str, torch.Tensor], n: int
) -> None:
    """Make ``mean`` the mean of ``n`` states, the last being ``state``.

    Updated as ``mean += (state - mean) / n``: a tensor no epoch changed (a
    frozen encoder's) stays exactly as it was. Integer tensors (counters) keep
    the best epoch's values.
    """
    for k, m in mean.items():
        if m.is_floating_point():
            m.add_(state[k].detach().to("cpu") - m, alpha=1 / n)


SchedulerFactory = Callable[[torch.optim.Optimizer, int], Any]


class LRScheduler(Callback):
    """Step a ``torch.optim.lr_scheduler`` after every optimizer step or epoch.

    Parameters
    ----------
    schedule : {"onecycle", "cosine"} or callable
        A name, or ``f(optimizer, total_steps) -> scheduler``, where
        ``total_steps`` counts the steps of the whole run at this ``interval``.
    interval : {"step", "epoch"}
        When the scheduler steps.
    warmup_fraction : float
        For ``"cosine"``: the first fraction of the run raises the learning rate
        linearly from 1% of its value, then the cosine decay follows.
    """

    def __init__(
        self,
        schedule: str | SchedulerFactory,
        interval: Literal["step", "epoch"] = "step",
        warmup_fraction: float = 0.0,
    ) -> None:
        self.schedule, self.interval = schedule, interval
        self.warmup_fraction = warmup_fraction

    def on_fit_start(self, trainer: Run, model: nn.Module) -> None:
        epochs = trainer.config.max_epochs
        total = epochs * (trainer.steps_per_epoch if self.interval == "step" else 1)
        make = self.schedule if callable(self.schedule) else self._named
        self.scheduler = make(trainer.optimizer, max(total, 1))

    def _named(self, optimizer: torch.optim.Optimizer, total: int) -> Any:
        sched = torch.optim.lr_scheduler
        if self.schedule == "onecycle":
            peaks = [g["lr"] for g in optimizer.param_groups]
            return sched.OneCycleLR(optimizer, max_lr=peaks, total_steps=total)
        if self.schedule != "cosine":
            raise ValueError(
                f"lr_scheduler must be 'onecycle', 'cosine' or a callable, got "
                f"{self.schedule!r}."
            )
        warmup = round(self.warmup_fraction * total)
        cosine = sched.CosineAnnealingLR(optimizer, T_max=max(total - warmup, 1))
        if warmup == 0:
            return cosine
        ramp = sched.LinearLR(optimizer, start_factor=0.01, total_iters=warmup)
        return sched.SequentialLR(optimizer, [ramp, cosine], milestones=[warmup])

    def on_step_end(self, trainer: Run, model: nn.Module, loss: float) -> None:
        if self.interval == "step":
            self.scheduler.step()

    def on_epoch_end(self, trainer: Run, model: nn.Module, row: dict[str, Any]) -> None:
        if self.interval == "epoch":
            self.scheduler.step()

    def state_dict(self) -> dict[str, Any]:
        return self.scheduler.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.scheduler.load_state_dict(state)


class CSVLogger(Callback):
    """Append each epoch's history row to a CSV file (rank 0 only).

    Parameters
    ----------
    path : str or Path
        The file; its header is written with the first row of a fresh run.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def on_epoch_end(self, trainer: Run, model: nn.Module, row: dict[str, Any]) -> None:
        if not trainer.distributed.is_main:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        new = row["epoch"] == 1 or not self.path.exists()
        with self.path.open("w" if new else "a", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(row))
            if new:
                writer.writeheader()
            writer.writerow(row)


class TensorBoardLogger(Callback):
    """Write each epoch's figures, and the loss of every step, for TensorBoard.

    Needs the ``tensorboard`` package. Parameters: ``log_dir``, the run's folder
    (``tensorboard --logdir`` its parent).
    """

    def __init__(self, log_dir: str | Path) -> None:
        self.log_dir = str(log_dir)

    def on_fit_start(self, trainer: Run, model: nn.Module) -> None:
        from torch.utils.tensorboard import SummaryWriter

        self.writer = (
            SummaryWriter(self.log_dir) if trainer.distributed.is_main else None
        )
        self.step = 0

    def on_step_end(self, trainer: Run, model: nn.Module, loss: float) -> None:
        self.step += 1
        if self.writer is not None:
            self.writer.add_scalar("train/step_loss", loss, self.step)

    def on_epoch_end(self, trainer: Run, model: nn.Module, row: dict[str, Any]) -> None:
        if self.writer is None:
            return
        for key, value in row.items():
            if key != "epoch":
                self.writer.add_scalar(f"epoch/{key}", value, row["epoch"])
        self.writer.flush()

    def on_fit_end(self, trainer: Run, model: nn.Module) -> None:
        if self.writer is not None:
            self.writer.close()


class UnfreezeBackbones(Callback):
    """Train frozen backbones from epoch ``at_epoch`` on (1-based), at their own LR.

    Warm the new layers up on a frozen backbone, then fine-tune it. The
    optimizer holds every parameter from the start (frozen ones get no gradient,
    so no update), so its LR schedule covers the backbones too. Use it with
    ``cache_features=False`` on an estimator (a cached encoder is not run), and
    not in a distributed run (DDP registers trainable parameters once).

    Parameters
    ----------
    at_epoch : int
        First epoch that trains the backbones.
    modules : sequence of nn.Module, optional
        What to unfreeze; by default every ``Backbone`` (pretrained encoder).
    """

    def __init__(self, at_epoch: int, modules: Sequence[nn.Module] | None = None):
        self.at_epoch, self.modules = at_epoch, modules

    def on_fit_start(self, trainer: Run, model: nn.Module) -> None:
        if trainer.distributed.enabled:
            raise ValueError("UnfreezeBackbones does not work in a distributed run.")

    def on_epoch_start(self, trainer: Run, model: nn.Module) -> None:
        if trainer.epoch + 1 < self.at_epoch:
            return
        targets = self.modules or [
            m for m in model.modules() if isinstance(m, Backbone)
        ]
        for module in targets:
            if isinstance(module, Backbone):
                module.unfreeze()
            else:
                module.requires_grad_(True)
        model.train()


class ModelCheckpoint(Callback):
    """Save the run after each epoch (``last.pt``) and at its best (``best.pt``).

    ``Trainer.fit(..., state=load_checkpoint(folder / "last.pt"))`` continues
    from ``last.pt``; an estimator with ``checkpoint_dir`` does so by itself when the
    checkpoint is of the same run. Only rank 0 writes in a distributed run.

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
        self,
        dirpath: str | os.PathLike[str],
        monitor: str = "valid_loss",
        save_best: bool = True,
    ) -> None:
        self.dirpath, self.monitor, self.save_best = Path(dirpath), monitor, save_best
        self.best = float("inf")

    def on_epoch_end(self, trainer: Run, model: nn.Module, row: dict[str, Any]) -> None:
        value = row.get(self.monitor)
        better = value is not None and value < self.best
        if better:
            self.best = float(value)  # type: ignore[arg-type]
        if not trainer.distributed.is_main:
            return
        state = trainer.state_dict()
        atomic_save(state, self.dirpath / LAST)
        if self.save_best and better:
            atomic_save(state, self.dirpath / BEST)

    def state_dict(self) -> dict[str, Any]:
        return {"best": self.best}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.best = state["best"]
