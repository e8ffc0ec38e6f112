"""Training: the Trainer, its configuration and callbacks."""

from widemm.training.callbacks import Callback, EarlyStopping
from widemm.training.trainer import TrainConfig, Trainer

__all__ = ["Callback", "EarlyStopping", "TrainConfig", "Trainer"]
