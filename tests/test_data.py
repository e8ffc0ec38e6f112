"""Datasets and batches: splits, and global batches shared exactly by ranks."""

import functools
import operator

import numpy as np
import torch

from widemm.data import FrameDataset, GlobalBatches


def test_split_is_seeded_stratified_and_disjoint():
    target = torch.tensor([0.0] * 90 + [1.0] * 10)
    data = FrameDataset({"x": torch.arange(100.0)[:, None]}, target)
    train, valid, held = data.split(0.2, seed=3, stratify=True)
    assert len(train) == 80
    assert len(valid) == 20
    assert float(valid.inputs["target"].sum()) == 2.0  # 10% positive, as in all
    again = data.split(0.2, seed=3, stratify=True)[2]
    np.testing.assert_array_equal(held, again)
    rows = set(train.inputs["x"][:, 0].tolist()) | set(held.tolist())
    assert rows == set(range(100))
    assert data.split(0.0, seed=3, stratify=True)[1] is None


def test_ranks_share_each_global_batch_exactly():
    one = list(GlobalBatches(103, 16, seed=5, rank=0, world_size=1))
    shares = [
        list(GlobalBatches(103, 16, seed=5, rank=r, world_size=3)) for r in range(3)
    ]
    assert all(len(s) == len(one) for s in shares)
    for k, batch in enumerate(one):
        assert sorted(
            functools.reduce(operator.iadd, (s[k] for s in shares), [])
        ) == sorted(batch)
    epoch = GlobalBatches(103, 16, seed=5, rank=0, world_size=1)
    epoch.set_epoch(1)
    assert list(epoch) != one  # another epoch, another order


def test_split_last_holds_out_the_last_rows_unshuffled():
    target = torch.tensor([0.0] * 90 + [1.0] * 10)
    data = FrameDataset({"x": torch.arange(100.0)[:, None]}, target)
    train, valid, held = data.split(0.2, seed=3, stratify=True, last=True)
    np.testing.assert_array_equal(held, np.arange(80, 100))
    assert valid.inputs["x"][:, 0].tolist() == list(range(80, 100))
    assert train.inputs["x"][:, 0].tolist() == list(range(80))
