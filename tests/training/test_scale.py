"""Training at scale: resume after SIGKILL, DDP on 2 CPU processes, precision,
accumulation, clipping, callbacks, streaming from parquet."""

import os
import signal
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from tests.conftest import DATA
from widemm import WideDeepClassifier
from widemm.data import FrameDataset
from widemm.models.image import ImageEncoder
from widemm.streaming import ParquetStream
from widemm.training import Callback, TrainConfig, Trainer
from widemm.training.callbacks import CSVLogger, TensorBoardLogger, UnfreezeBackbones
from widemm.training.checkpoint import LAST, atomic_save

SCRIPT = Path(__file__).parent / "scripts" / "fit_adult.py"
ROOT = Path(__file__).resolve().parents[2]


def run(*args, torchrun=False, check=True):
    cmd = [sys.executable]
    if torchrun:
        cmd += ["-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        [*cmd, str(SCRIPT), *map(str, args)], capture_output=True, text=True, env=env
    )
    if check and done.returncode != 0:
        raise AssertionError(done.stderr[-3000:])
    return done


def assert_same_weights(a, b, atol=0.0):
    a, b = torch.load(a), torch.load(b)
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(a[k], b[k], atol=atol, rtol=0 if atol == 0 else 1e-4)


def test_a_killed_run_resumes_to_the_same_weights(tmp_path):
    run(tmp_path / "straight.pt")
    killed = run(
        tmp_path / "never.pt",
        "--checkpoint", tmp_path / "ckpt",
        "--kill-at-epoch", 3,
        check=False,
    )  # fmt: skip
    assert killed.returncode == -signal.SIGKILL
    assert not (tmp_path / "never.pt").exists()
    state = torch.load(tmp_path / "ckpt" / LAST, weights_only=True)
    assert len(state["history"]) == 2  # the kill came mid-epoch 3
    assert {"optimizer", "scaler", "callbacks", "seed", "should_stop", "run"} <= set(
        state
    )
    resumed = run(tmp_path / "resumed.pt", "--checkpoint", tmp_path / "ckpt")
    assert "history [1, 2, 3, 4]" in resumed.stderr
    assert_same_weights(tmp_path / "straight.pt", tmp_path / "resumed.pt")


def test_a_killed_pretraining_resumes_to_the_same_weights(tmp_path):
    run(tmp_path / "straight.pt", "--pretrain")
    killed = run(
        tmp_path / "never.pt",
        "--pretrain",
        "--checkpoint", tmp_path / "ckpt",
        "--kill-at-epoch", 3,
        check=False,
    )  # fmt: skip
    assert killed.returncode == -signal.SIGKILL
    state = torch.load(tmp_path / "ckpt" / "pretrain" / LAST, weights_only=True)
    assert len(state["history"]) == 2
    resumed = run(
        tmp_path / "resumed.pt", "--pretrain", "--checkpoint", tmp_path / "ckpt"
    )
    assert "history [1, 2, 3, 4]" in resumed.stderr
    assert_same_weights(tmp_path / "straight.pt", tmp_path / "resumed.pt")


def test_two_process_pretraining_matches_one_process(tmp_path):
    """Each rank contrasts its share of every batch against all ranks' rows; the
    last batch of 1,011 rows splits unevenly (51 rows: 26 and 25). More steps
    would not do: with the fusion's ReLUs in the loss, float sums taken in
    another order (as the ranks' are) drift apart, as a 1e-7 nudge of one
    weight of a single process grows to 7e-3 over 1,779 rows' 112 steps."""
    run(tmp_path / "single.pt", "--pretrain", "--rows", 1011)
    run(tmp_path / "ddp.pt", "--pretrain", "--rows", 1011, torchrun=True)
    assert_same_weights(tmp_path / "single.pt", tmp_path / "ddp.pt", atol=1e-5)


def test_checkpoints_are_written_atomically(tmp_path):
    path = tmp_path / "last.pt"
    atomic_save({"epoch": 1}, path)

    class Unpicklable:
        def __reduce__(self):
            raise RuntimeError("crash while writing")

    with pytest.raises(RuntimeError, match="crash while writing"):
        atomic_save({"epoch": 2, "bad": Unpicklable()}, path)
    assert torch.load(path) == {"epoch": 1}  # the old checkpoint, whole
    assert os.listdir(tmp_path) == ["last.pt"]  # no temporary file left


def test_two_process_ddp_matches_one_process_with_an_odd_row_count(tmp_path):
    # 1,779 rows: 1,601 train (10% validation), so the last global batch of 64
    # has a single row and one rank's share of it is empty.
    run(tmp_path / "single.pt", "--rows", 1779)
    run(tmp_path / "ddp.pt", "--rows", 1779, torchrun=True)
    assert_same_weights(tmp_path / "single.pt", tmp_path / "ddp.pt", atol=1e-5)


def test_two_process_ddp_matches_one_process_for_weighted_multitask(tmp_path):
    # learned task weights live in the Trainer's objective, outside the DDP module:
    # their gradients must be summed over the ranks by hand
    run(tmp_path / "single.pt", "--rows", 1779, "--multitask")
    run(tmp_path / "ddp.pt", "--rows", 1779, "--multitask", torchrun=True)
    assert_same_weights(tmp_path / "single.pt", tmp_path / "ddp.pt", atol=1e-5)


# ---------------------------------------------------------------- the Trainer
class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(3, 16), nn.ReLU(), nn.Linear(16, 1))

    def forward(self, batch):
        return self.net(batch["x"])


def data(n=512, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 3, generator=g)
    return FrameDataset({"x": x}, (x @ torch.tensor([2.0, -1.0, 0.5]) > 0).float())


def train(config, callbacks=(), model=None, dataset=None):
    torch.manual_seed(0)
    model = model or Net()
    Trainer(config, callbacks).fit(model, dataset or data())
    return model


def test_accumulated_micro_batches_equal_one_big_batch():
    big = train(
        TrainConfig(task="binary", max_epochs=3, batch_size=128, random_state=0)
    )
    cfg = TrainConfig(
        task="binary",
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

    cfg = TrainConfig(task="binary", max_epochs=2, batch_size=32, clip_grad_norm=0.01)
    train(cfg, [RecordNorm()])
    assert len(norms) == 32
    assert max(norms) <= 0.01 + 1e-6


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_mixed_precision_trains(precision):
    cfg = TrainConfig(
        task="binary",
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
            TrainConfig(task="binary", max_epochs=1, batch_size=32),
            model=NaNAtThirdBatch(),
        )


def test_cosine_warmup_rises_then_decays():
    lrs = []

    class RecordLR(Callback):
        def on_step_end(self, trainer, model, loss):
            lrs.append(trainer.optimizer.param_groups[0]["lr"])

    cfg = TrainConfig(
        task="binary",
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

    cfg = TrainConfig(task="binary", max_epochs=2, batch_size=256)
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


class Images(nn.Module):
    def __init__(self, **kwargs):
        super().__init__()
        self.encoder = ImageEncoder("resnet18", **kwargs)
        self.head = nn.Linear(self.encoder.output_dim, 1)

    def forward(self, batch):
        return self.head(self.encoder(batch))


def image_data(n=16):
    g = torch.Generator().manual_seed(0)
    return FrameDataset(
        {"pixels": torch.randn(n, 3, 32, 32, generator=g)},
        (torch.arange(n) % 2).float(),
    )


def test_backbones_unfreeze_on_schedule():
    model = Images(freeze=True, lr_scale=1.0)
    before = [p.detach().clone() for p in model.encoder.parameters()]
    seen = []

    class Watch(Callback):
        def on_epoch_end(self, trainer, model_, row):
            now = list(model.encoder.parameters())
            pairs = zip(before, now, strict=True)
            seen.append(any(not torch.equal(a, b) for a, b in pairs))

    cfg = TrainConfig(task="binary", max_epochs=3, batch_size=8)
    train(cfg, [UnfreezeBackbones(at_epoch=2), Watch()], model, image_data())
    assert seen == [False, True, True]
    assert all(p.requires_grad for p in model.encoder.parameters())


def seeded_images():
    torch.manual_seed(0)  # both models start from the same weights
    return Images()


def test_activation_checkpointing_gives_the_same_weights():
    cfg = TrainConfig(task="binary", max_epochs=1, batch_size=16, random_state=0)
    plain = train(cfg, model=seeded_images(), dataset=image_data())
    ckpt = train(
        replace(cfg, activation_checkpointing=True),
        model=seeded_images(),
        dataset=image_data(),
    )
    assert "forward" in vars(ckpt.encoder.blocks[-1])  # wrapped
    for a, b in zip(plain.parameters(), ckpt.parameters(), strict=True):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-4)


# ---------------------------------------------------------------- streaming
@pytest.fixture(scope="module")
def adult_parquet(tmp_path_factory):
    df = pd.read_parquet(DATA / "adult.parquet").sample(6000, random_state=0)
    folder = tmp_path_factory.mktemp("adult_parts")
    df[:3500].to_parquet(folder / "part-0.parquet", index=False)
    df[3500:5000].to_parquet(folder / "part-1.parquet", index=False)
    return folder, df[5000:]


def test_fit_streams_parquet_files_in_chunks(adult_parquet):
    from sklearn.metrics import roc_auc_score

    folder, test = adult_parquet
    rows = []

    class CountSteps(Callback):
        def on_fit_start(self, trainer, model):
            self.steps_per_epoch = trainer.steps_per_epoch

        def on_step_end(self, trainer, model, loss):
            rows.append(trainer.epoch)

    model = WideDeepClassifier(
        max_epochs=3,
        batch_size=256,
        random_state=0,
        stream_sample_rows=2000,
        stream_chunk_rows=1000,
        callbacks=[counter := CountSteps()],
    ).fit(folder, "income")
    assert (
        model.feature_names_in_.tolist() == test.drop(columns="income").columns.tolist()
    )
    proba = model.predict_proba(test.drop(columns="income"))[:, 1]
    auc = roc_auc_score(test["income"] == ">50K", proba)
    assert auc > 0.88
    # An epoch: the 4,800 rows not held out for validation (10% of the sample),
    # 256 a batch within each chunk of at most 1,000 rows.
    assert rows.count(0) == counter.steps_per_epoch
    assert 19 <= counter.steps_per_epoch <= 24
    assert len(model.history_) == 3
    assert "valid_auc" in model.history_


def test_stream_batches_cover_every_row_once_and_shard_over_ranks(adult_parquet):
    folder, _ = adult_parquet
    stream = ParquetStream(folder, chunk_rows=700)
    stream.skip = np.arange(0, 5000, 10)
    stream.transform = lambda frame: {"row": torch.from_numpy(frame.index.to_numpy())}
    one = torch.cat([b["row"] for b in stream.batches(64, epoch=0, seed=0)])
    assert sorted(one.tolist()) == sorted(set(range(5000)) - set(range(0, 5000, 10)))
    assert len(list(stream.batches(64, epoch=0, seed=0))) == stream.n_batches(64)
    ranks = [
        torch.cat([b["row"] for b in stream.batches(32, 0, 0, rank=r, world_size=2)])
        for r in (0, 1)
    ]
    assert len(ranks[0]) == len(ranks[1])
    assert set(ranks[0].tolist()) | set(ranks[1].tolist()) == set(one.tolist())
    again = torch.cat([b["row"] for b in stream.batches(64, epoch=1, seed=0)])
    assert not torch.equal(one, again)  # a new order each epoch


def test_streamed_images_are_augmented_while_training(tmp_path):
    df = pd.read_parquet(DATA / "emoji" / "emoji.parquet").sample(120, random_state=0)
    df = df[["image_path", "added_in"]].assign(flag=df["category"].eq("Flags"))
    df.to_parquet(tmp_path / "emoji.parquet", index=False)
    model = WideDeepClassifier(
        image_root=str(DATA / "emoji"),
        image_size=32,
        image_augment=True,
        max_epochs=2,
        stream_chunk_rows=50,
        random_state=0,
    ).fit(tmp_path / "emoji.parquet", "flag")
    assert len(model.history_) == 2
    X = df.drop(columns="flag")
    assert model.pipeline_.training_inputs(model.pipeline_.transform(X), model.model_)[
        "image_0"
    ].augment
    assert not model.pipeline_.inputs(X, model.model_)[
        "image_0"
    ].augment  # predicting never augments
    assert model.predict_proba(X).shape == (120, 2)


def test_streaming_errors_name_the_problem(adult_parquet, tmp_path):
    folder, _ = adult_parquet
    model = WideDeepClassifier(max_epochs=1)
    with pytest.raises(ValueError, match="'salary' is not in"):
        model.fit(folder, "salary")
    with pytest.raises(TypeError, match="name of the target column"):
        model.fit(folder, np.zeros(3))
    with pytest.raises(FileNotFoundError, match="No parquet file"):
        model.fit(tmp_path / "nothing", "income")


def test_streamed_fit_takes_a_weight_column(adult_parquet, tmp_path):
    folder, test = adult_parquet
    frame = pd.concat([pd.read_parquet(f) for f in sorted(folder.glob("*.parquet"))])
    frame["w"] = np.where(frame["income"] == ">50K", 0.05, 1.0)  # positives ~vanish
    frame.to_parquet(tmp_path / "weighted.parquet", index=False)
    options = dict(max_epochs=2, random_state=0)
    weighted = WideDeepClassifier(**options).fit(
        tmp_path / "weighted.parquet", "income", sample_weight="w"
    )
    assert "w" not in weighted.feature_names_in_
    plain = WideDeepClassifier(**options).fit(folder, "income")
    X = test.drop(columns="income")
    share = weighted.predict_proba(X)[:, 1].mean() / plain.predict_proba(X)[:, 1].mean()
    assert share < 0.5
    with pytest.raises(ValueError, match="Weight column 'weight' is not in"):
        WideDeepClassifier(max_epochs=1).fit(folder, "income", sample_weight="weight")


def test_contrastive_negatives_are_gathered_across_ranks(tmp_path):
    """Two ranks, half a batch each, give the whole batch's loss and gradients:
    the other rank's rows serve as negatives, and their gradients flow back."""
    script = ROOT / "tests" / "training" / "scripts" / "contrastive_gather.py"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
    for cmd, name in (
        ([sys.executable], "one.pt"),
        ([*torchrun, "--nproc_per_node=2"], "two.pt"),
    ):
        done = subprocess.run(
            [*cmd, str(script), str(tmp_path / name)],
            capture_output=True, text=True, env=env,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr[-3000:]
    one, two = torch.load(tmp_path / "one.pt"), torch.load(tmp_path / "two.pt")
    torch.testing.assert_close(two["loss"], one["loss"])
    torch.testing.assert_close(two["grad_a"], one["grad_a"])
