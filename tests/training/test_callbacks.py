"""Callbacks: the learning-rate schedule, hooks and loggers, unfreezing backbones."""

import os

import numpy as np
import pandas as pd
import pytest
import torch

from tests.training.common import (
    Images,
    image_data,
    train,
)
from widemm.training import Callback, TrainConfig
from widemm.training.callbacks import (
    CSVLogger,
    EarlyStopping,
    TensorBoardLogger,
    UnfreezeBackbones,
)


def test_cosine_warmup_rises_then_decays():
    lrs = []

    class RecordLR(Callback):
        def on_step_end(self, trainer, model, loss):
            lrs.append(trainer.optimizer.param_groups[0]["lr"])

    cfg = TrainConfig(
        objective="binary",
        max_epochs=4,
        batch_size=64,
        lr_scheduler="cosine",
        warmup_fraction=0.25,
    )
    train(cfg, [RecordLR()])
    peak = int(np.argmax(lrs))
    assert peak == pytest.approx(len(lrs) * 0.25, abs=1)
    assert lrs[0] < 0.1 * lrs[peak]
    assert lrs[-1] < 0.05 * lrs[peak]


def test_hooks_run_in_order_and_loggers_write(tmp_path):
    calls = []

    class Record(Callback):
        def on_fit_start(self, trainer, model):
            calls.append("fit_start")

        def on_epoch_start(self, trainer, model):
            calls.append(f"epoch_start {trainer.epoch}")

        def on_step_end(self, trainer, model, loss):
            calls.append("step")

        def on_epoch_end(self, trainer, model, row):
            calls.append(f"epoch_end {row['epoch']}")

        def on_fit_end(self, trainer, model):
            calls.append("fit_end")

    cfg = TrainConfig(objective="binary", max_epochs=2, batch_size=256)
    callbacks = [
        Record(),
        CSVLogger(tmp_path / "history.csv"),
        TensorBoardLogger(tmp_path / "tb"),
    ]
    train(cfg, callbacks)
    assert calls == [
        "fit_start",
        "epoch_start 0", "step", "step", "epoch_end 1",
        "epoch_start 1", "step", "step", "epoch_end 2",
        "fit_end",
    ]  # fmt: skip
    history = pd.read_csv(tmp_path / "history.csv")
    assert history["epoch"].tolist() == [1, 2]
    assert {"train_loss", "lr", "seconds"} <= set(history.columns)
    assert any(f.startswith("events.out.tfevents") for f in os.listdir(tmp_path / "tb"))


def test_backbones_unfreeze_on_schedule():
    model = Images(freeze=True, lr_scale=1.0)
    before = [p.detach().clone() for p in model.encoder.parameters()]
    seen = []

    class Watch(Callback):
        def on_epoch_end(self, trainer, model_, row):
            now = list(model.encoder.parameters())
            pairs = zip(before, now, strict=True)
            seen.append(any(not torch.equal(a, b) for a, b in pairs))

    cfg = TrainConfig(objective="binary", max_epochs=3, batch_size=8)
    train(cfg, [UnfreezeBackbones(at_epoch=2), Watch()], model, image_data())
    assert seen == [False, True, True]
    assert all(p.requires_grad for p in model.encoder.parameters())


class Scalar(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(()))
        self.register_buffer("steps", torch.zeros((), dtype=torch.long))


class Validating:
    """What EarlyStopping sees of a trainer: the validation loss is (w - 2)²."""

    def __init__(self):
        self.should_stop, self.history = False, []

    def validate(self, model):
        return {"valid_loss": float((model.w.detach() - 2) ** 2)}


@pytest.mark.parametrize(("later", "kept", "averaged"), [(3.0, 2.0, 2), (9.0, 1.0, 1)])
def test_early_stopping_restores_the_mean_of_the_last_epochs_when_it_validates_better(
    later, kept, averaged
):
    """Epochs at w = 1 (best, loss 1) then w = later: the mean of the two comes
    back if it validates better than the best epoch (w = 2: loss 0), else the
    best epoch. Integer buffers keep the best epoch's values."""
    model, trainer = Scalar(), Validating()
    stop = EarlyStopping(patience=1, average=True)
    stop.on_fit_start(trainer, model)
    for epoch, w in enumerate((1.0, later), start=1):
        with torch.no_grad():
            model.w.fill_(w)
            model.steps.fill_(epoch)
        trainer.history.append({"epoch": epoch, **trainer.validate(model)})
        stop.on_epoch_end(trainer, model, trainer.history[-1])
    assert trainer.should_stop
    stop.on_fit_end(trainer, model)
    assert (model.w.item(), stop.averaged, stop.best_epoch) == (kept, averaged, 1)
    assert int(model.steps) == 1
    assert stop.kept_figures["valid_loss"] == (kept - 2) ** 2


def test_early_stopping_without_average_restores_the_best_epoch():
    model, trainer = Scalar(), Validating()
    stop = EarlyStopping(patience=1)
    stop.on_fit_start(trainer, model)
    for epoch, w in enumerate((1.0, 3.0), start=1):
        with torch.no_grad():
            model.w.fill_(w)
        trainer.history.append({"epoch": epoch, **trainer.validate(model)})
        stop.on_epoch_end(trainer, model, trainer.history[-1])
    stop.on_fit_end(trainer, model)
    assert (model.w.item(), stop.averaged) == (1.0, 1)
