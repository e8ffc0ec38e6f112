"""Fitting on parquet files streamed in chunks."""

import numpy as np
import pandas as pd
import pytest
import torch

from tests.conftest import DATA
from widemm import WideDeepClassifier
from widemm.datasets import load_adult
from widemm.streaming import ParquetStream
from widemm.training import Callback


@pytest.fixture(scope="module")
def adult_parquet(tmp_path_factory):
    df = load_adult().sample(6000, random_state=0)
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
    assert "valid_roc_auc" in model.history_


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
