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
from widemm.training.callbacks import CSVLogger, TensorBoardLogger, UnfreezeBackbones


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
