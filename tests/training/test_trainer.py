import numpy as np
import pytest
import torch
from torch import nn

from widemm.data import FrameDataset, make_loader
from widemm.training import Callback, TrainConfig, Trainer


class Linear(nn.Module):
    def __init__(self, n_in=3, n_out=1):
        super().__init__()
        self.layer = nn.Linear(n_in, n_out)

    def forward(self, batch):
        return self.layer(batch["x"])


def linear_data(n=400, seed=0, noise=0.0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 3, generator=g)
    y = (
        x @ torch.tensor([2.0, -1.0, 0.5]) + noise * torch.randn(n, generator=g) > 0
    ).float()
    return FrameDataset({"x": x}, y)


def test_loader_yields_whole_batches_in_order():
    data = FrameDataset({"x": torch.arange(10).view(10, 1)}, torch.arange(10))
    batches = list(make_loader(data, 4, shuffle=False))
    assert [len(b["target"]) for b in batches] == [4, 4, 2]
    assert torch.cat([b["x"][:, 0] for b in batches]).tolist() == list(range(10))


def test_trainer_learns_and_reports_history():
    config = TrainConfig(
        task="binary", max_epochs=15, batch_size=32, learning_rate=0.05
    )
    trainer = Trainer(config)
    model = Linear()
    history = trainer.fit(model, linear_data(), linear_data(seed=1))
    assert len(history) == 15
    assert history[-1]["train_loss"] < history[0]["train_loss"]
    assert history[-1]["valid_auc"] > 0.98
    assert {"epoch", "lr", "train_loss", "valid_loss", "seconds"} <= set(history[0])


def test_trainer_same_seed_same_weights():
    def run():
        torch.manual_seed(0)
        model = Linear()
        config = TrainConfig(task="binary", max_epochs=3, random_state=7, batch_size=16)
        Trainer(config).fit(model, linear_data())
        return model.layer.weight.detach().clone()

    torch.testing.assert_close(run(), run(), rtol=0, atol=0)


def test_trainer_early_stopping_restores_best_epoch():
    class Record(Callback):
        def on_epoch_end(self, trainer, model, row):
            row["weight"] = model.layer.weight.detach().clone()

    config = TrainConfig(
        task="binary", max_epochs=200, n_iter_no_change=2, learning_rate=0.5
    )
    trainer = Trainer(config, callbacks=[Record()])
    model = Linear()
    history = trainer.fit(
        model, linear_data(200, noise=2), linear_data(100, 1, noise=2)
    )
    assert len(history) < 200  # stopped early
    best = min(history, key=lambda r: r["valid_loss"])
    torch.testing.assert_close(model.layer.weight, best["weight"])
    assert history[-1]["epoch"] == best["epoch"] + 2


def test_trainer_multiclass_and_regression_losses():
    x = torch.randn(300, 3, generator=torch.Generator().manual_seed(0))
    labels = x.argmax(1)
    trainer = Trainer(TrainConfig(task="multiclass", max_epochs=30, learning_rate=0.05))
    history = trainer.fit(
        Linear(3, 3), FrameDataset({"x": x}, labels), FrameDataset({"x": x}, labels)
    )
    assert history[-1]["valid_accuracy"] > 0.9
    target = x @ torch.tensor([1.0, 2.0, 3.0])
    trainer = Trainer(TrainConfig(task="regression", max_epochs=40, learning_rate=0.05))
    history = trainer.fit(
        Linear(), FrameDataset({"x": x}, target), FrameDataset({"x": x}, target)
    )
    assert history[-1]["valid_rmse"] < 0.1 * target.std()


def test_trainer_stops_on_nan_loss_naming_the_epoch():
    data = linear_data()
    data.inputs["x"][5, 0] = float("nan")
    with pytest.raises(FloatingPointError, match="epoch 1"):
        Trainer(TrainConfig(task="binary", max_epochs=2)).fit(Linear(), data)


def test_predict_keeps_row_order():
    data = linear_data(n=50)
    model = Linear()
    logits = Trainer(TrainConfig(task="binary")).predict(model, data, batch_size=7)
    with torch.no_grad():
        expected = model.layer(data.inputs["x"]).numpy()
    np.testing.assert_allclose(logits, expected, rtol=1e-6)
