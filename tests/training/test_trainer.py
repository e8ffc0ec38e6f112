from dataclasses import replace

import numpy as np
import pytest
import torch
from torch import nn

from tests.training.common import Net, data, image_data, seeded_images, train
from widemm.data import FrameDataset, make_loader
from widemm.training import Callback, TrainConfig, Trainer
from widemm.training.config import auto_patience


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
        objective="binary", max_epochs=15, batch_size=32, learning_rate=0.05
    )
    trainer = Trainer(config)
    model = Linear()
    history = trainer.fit(model, linear_data(), linear_data(seed=1))
    assert len(history) == 15
    assert history[-1]["train_loss"] < history[0]["train_loss"]
    assert history[-1]["valid_roc_auc"] > 0.98
    assert {"epoch", "lr", "train_loss", "valid_loss", "seconds"} <= set(history[0])


def test_trainer_same_seed_same_weights():
    def run():
        torch.manual_seed(0)
        model = Linear()
        config = TrainConfig(
            objective="binary", max_epochs=3, random_state=7, batch_size=16
        )
        Trainer(config).fit(model, linear_data())
        return model.layer.weight.detach().clone()

    torch.testing.assert_close(run(), run(), rtol=0, atol=0)


class Record(Callback):
    def on_epoch_end(self, trainer, model, row):
        row["weight"] = model.layer.weight.detach().clone()


def early_stopped(train, valid, **config):
    config = TrainConfig(max_epochs=200, n_iter_no_change=2, **config)
    trainer = Trainer(config, callbacks=[Record()])
    model = Linear()
    history = trainer.fit(model, train, valid)
    assert len(history) < 200  # stopped early
    best = min(history, key=lambda r: r["valid_loss"])
    assert history[-1]["epoch"] == best["epoch"] + 2
    return trainer, model, history, best


def test_trainer_early_stopping_restores_best_epoch():
    _, model, _, best = early_stopped(
        linear_data(200, noise=2),
        linear_data(100, 1, noise=2),
        objective="binary",
        learning_rate=0.5,
        average_epochs=False,
    )
    torch.testing.assert_close(model.layer.weight, best["weight"])


def test_trainer_early_stopping_restores_the_mean_of_the_last_epochs(caplog):
    """A noisy regression at a high learning rate: the weights of the best
    epoch and of the two after it scatter around the least-squares solution;
    their mean validates lower than the best epoch's, and comes back."""

    def noisy(seed):
        g = torch.Generator().manual_seed(seed)
        x = torch.randn(200, 3, generator=g)
        y = x @ torch.tensor([2.0, -1.0, 0.5]) + 0.5 * torch.randn(200, generator=g)
        return FrameDataset({"x": x}, y)

    torch.manual_seed(0)
    trainer, model, history, best = early_stopped(
        noisy(0),
        noisy(1),
        objective="regression",
        learning_rate=0.2,
        batch_size=16,
        random_state=0,
        verbose=1,
    )
    mean = torch.stack([r["weight"] for r in history[best["epoch"] - 1 :]]).mean(0)
    torch.testing.assert_close(model.layer.weight, mean)
    kept = trainer.validate(model)["valid_loss"]
    assert kept < best["valid_loss"]
    first, last = best["epoch"], history[-1]["epoch"]
    line = f"kept the mean of epochs {first}-{last}: valid_loss {kept:.4g}"
    assert line in caplog.text


@pytest.mark.parametrize(("n_rows", "patience"), [(9_000, 5), (12_000, 1)])
def test_auto_patience_is_1_epoch_from_10000_training_rows(n_rows, patience):
    """With nothing to learn (learning rate 0) the first epoch stays the best:
    the run stops after 1 + patience epochs."""
    config = TrainConfig(
        objective="binary", max_epochs=20, batch_size=256, learning_rate=0.0
    )
    assert config.n_iter_no_change == "auto"
    history = Trainer(config).fit(
        Linear(), linear_data(n_rows), linear_data(200, seed=1)
    )
    assert len(history) == 1 + patience


def test_auto_patience_keeps_given_values():
    assert auto_patience(3, 50_000) == 3
    assert auto_patience(None, 50_000) is None
    assert (auto_patience("auto", 9_999), auto_patience("auto", 10_000)) == (5, 1)
    for bad in ("Auto", "two", 0, -1, 2.5, True):
        with pytest.raises(ValueError, match="n_iter_no_change must be a positive"):
            auto_patience(bad, 50_000)


def test_trainer_multiclass_and_regression_losses():
    x = torch.randn(300, 3, generator=torch.Generator().manual_seed(0))
    labels = x.argmax(1)
    trainer = Trainer(
        TrainConfig(objective="multiclass", max_epochs=30, learning_rate=0.05)
    )
    history = trainer.fit(
        Linear(3, 3), FrameDataset({"x": x}, labels), FrameDataset({"x": x}, labels)
    )
    assert history[-1]["valid_accuracy"] > 0.9
    target = x @ torch.tensor([1.0, 2.0, 3.0])
    trainer = Trainer(
        TrainConfig(objective="regression", max_epochs=40, learning_rate=0.05)
    )
    history = trainer.fit(
        Linear(), FrameDataset({"x": x}, target), FrameDataset({"x": x}, target)
    )
    assert history[-1]["valid_rmse"] < 0.1 * target.std()


def test_trainer_stops_on_nan_loss_naming_the_epoch():
    data = linear_data()
    data.inputs["x"][5, 0] = float("nan")
    with pytest.raises(FloatingPointError, match="epoch 1"):
        Trainer(TrainConfig(objective="binary", max_epochs=2)).fit(Linear(), data)


def test_predict_keeps_row_order():
    data = linear_data(n=50)
    model = Linear()
    logits = Trainer(TrainConfig(objective="binary")).predict(model, data, batch_size=7)
    with torch.no_grad():
        expected = model.layer(data.inputs["x"]).numpy()
    np.testing.assert_allclose(logits, expected, rtol=1e-6)


def test_accumulated_micro_batches_equal_one_big_batch():
    big = train(
        TrainConfig(objective="binary", max_epochs=3, batch_size=128, random_state=0)
    )
    cfg = TrainConfig(
        objective="binary",
        max_epochs=3,
        batch_size=32,
        accumulate_grad_batches=4,
        random_state=0,
    )
    small = train(cfg)
    for a, b in zip(big.parameters(), small.parameters(), strict=True):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-4)


def test_gradients_are_clipped():
    norms = []

    class RecordNorm(Callback):
        def on_fit_start(self, trainer, model):
            def hook(optimizer, args, kwargs):
                grads = [p.grad for p in model.parameters() if p.grad is not None]
                norms.append(float(torch.norm(torch.stack([g.norm() for g in grads]))))

            trainer.optimizer.register_step_pre_hook(hook)

    cfg = TrainConfig(
        objective="binary", max_epochs=2, batch_size=32, clip_grad_norm=0.01
    )
    train(cfg, [RecordNorm()])
    assert len(norms) == 32
    assert max(norms) <= 0.01 + 1e-6


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_mixed_precision_trains(precision):
    cfg = TrainConfig(
        objective="binary",
        max_epochs=10,
        batch_size=32,
        learning_rate=0.01,
        precision=precision,
    )
    model = train(cfg)
    dataset = data(seed=1)
    logits = Trainer(cfg).predict(model, dataset)[:, 0]
    accuracy = ((logits > 0) == dataset.inputs["target"].numpy().astype(bool)).mean()
    assert accuracy > 0.9


def test_a_nan_loss_names_the_batch():
    class NaNAtThirdBatch(Net):
        calls = 0

        def forward(self, batch):
            self.calls += 1
            out = super().forward(batch)
            return out * float("nan") if self.calls == 3 else out

    with pytest.raises(FloatingPointError, match="epoch 1, batch 3 of 16"):
        train(
            TrainConfig(objective="binary", max_epochs=1, batch_size=32),
            model=NaNAtThirdBatch(),
        )


def test_activation_checkpointing_gives_the_same_weights():
    cfg = TrainConfig(objective="binary", max_epochs=1, batch_size=16, random_state=0)
    plain = train(cfg, model=seeded_images(), dataset=image_data())
    ckpt = train(
        replace(cfg, activation_checkpointing=True),
        model=seeded_images(),
        dataset=image_data(),
    )
    assert "forward" in vars(ckpt.encoder.blocks[-1])  # wrapped
    for a, b in zip(plain.parameters(), ckpt.parameters(), strict=True):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-4)
