"""Callbacks: hooks the Trainer calls at fit start, each epoch end and fit end."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch
from torch import nn

if TYPE_CHECKING:
    from widemm.training.trainer import Trainer


class Callback:
    """Base of the callbacks; every hook does nothing unless overridden.

    A callback ends training by setting ``trainer.should_stop = True``.
    """

    def on_fit_start(self, trainer: Trainer, model: nn.Module) -> None:
        """Before the first epoch."""

    def on_epoch_end(
        self, trainer: Trainer, model: nn.Module, row: dict[str, Any]
    ) -> None:
        """After each epoch, with that epoch's history row."""

    def on_fit_end(self, trainer: Trainer, model: nn.Module) -> None:
        """After the last epoch."""


class EarlyStopping(Callback):
    """Stop when ``monitor`` has not improved for ``patience`` epochs; restore the best.

    Parameters
    ----------
    patience : int
        Epochs without improvement before stopping.
    monitor : str
        History column to minimise.
    min_delta : float
        Smallest decrease that counts as an improvement.
    """

    def __init__(
        self, patience: int = 5, monitor: str = "valid_loss", min_delta: float = 0.0
    ):
        self.patience, self.monitor, self.min_delta = patience, monitor, min_delta

    def on_fit_start(self, trainer: Trainer, model: nn.Module) -> None:
        self.best, self.best_epoch, self.wait = float("inf"), 0, 0
        self.best_state: dict[str, torch.Tensor] | None = None

    def on_epoch_end(
        self, trainer: Trainer, model: nn.Module, row: dict[str, Any]
    ) -> None:
        if row[self.monitor] < self.best - self.min_delta:
            self.best, self.best_epoch, self.wait = row[self.monitor], row["epoch"], 0
            self.best_state = {
                k: v.detach().to("cpu", copy=True)
                for k, v in model.state_dict().items()
            }
        else:
            self.wait += 1
            trainer.should_stop = self.wait >= self.patience

    def on_fit_end(self, trainer: Trainer, model: nn.Module) -> None:
        if self.best_state is not None:
            model.load_state_dict(self.best_state)
