"""Checkpoints: a run killed by SIGKILL resumes to the same weights; atomic files."""

import os
import signal

import pytest
import torch

from tests.training.common import (
    assert_same_weights,
    run,
)
from widemm.training.checkpoint import LAST, atomic_save


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
