"""Training: the Trainer, its configuration and callbacks."""

from widemm.training.callbacks import Callback, EarlyStopping
from widemm.training.trainer import Task, TrainConfig, Trainer, auto_schedule

__all__ = [
    "Callback",
    "EarlyStopping",
    "Task",
    "TrainConfig",
    "Trainer",
    "auto_schedule",
]
