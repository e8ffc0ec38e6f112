"""Training: the Trainer, its configuration and callbacks."""

from widemm.training.callbacks import Callback, EarlyStopping
from widemm.training.config import TrainConfig, auto_schedule
from widemm.training.trainer import Trainer

__all__ = [
    "Callback",
    "EarlyStopping",
    "TrainConfig",
    "Trainer",
    "auto_schedule",
]
