"""Two CPU processes under torchrun train as one process does."""

import os
import subprocess
import sys

import pytest
import torch

from tests.training.common import (
    ROOT,
    assert_same_weights,
    run,
)


def test_two_process_pretraining_matches_one_process(tmp_path):
    """Each rank contrasts its share of every batch against all ranks' rows; the
    last batch of 1,011 rows splits unevenly (51 rows: 26 and 25). More steps
    would not do: with the fusion's ReLUs in the loss, float sums taken in
    another order (as the ranks' are) drift apart, as a 1e-7 nudge of one
    weight of a single process grows to 7e-3 over 1,779 rows' 112 steps. The
    drift depends on the CPU's kernels: under 1e-5 with AVX-512, 1.4e-5 (2
    weights of 9,216) on an AVX2-only AMD EPYC. A lost gather or all-reduce
    changes the loss itself, not its rounding."""
    run(tmp_path / "single.pt", "--pretrain", "--rows", 1011)
    run(tmp_path / "ddp.pt", "--pretrain", "--rows", 1011, torchrun=True)
    assert_same_weights(tmp_path / "single.pt", tmp_path / "ddp.pt", atol=1e-4)


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


@pytest.mark.parametrize("weighting", ["famo", "nash", "gradnorm"])
def test_two_process_ddp_matches_one_process_with_learned_task_weights(
    tmp_path, weighting
):
    # FAMO moves its task weights by each step's loss sums over all ranks' rows;
    # Nash-MTL weighs them by the Gram matrix of all ranks' gradients, GradNorm
    # by their norms and the losses over all ranks' rows
    options = ("--rows", 1779, "--multitask", "--weighting", weighting)
    run(tmp_path / "single.pt", *options)
    run(tmp_path / "ddp.pt", *options, torchrun=True)
    assert_same_weights(tmp_path / "single.pt", tmp_path / "ddp.pt", atol=1e-5)


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


def test_two_process_regressor_with_accumulation_clipping_and_cosine(tmp_path):
    """Accumulation (2), clip_grad_norm and a cosine schedule meet DDP as in one
    process: predictions agree to float-order drift (measured 1.2e-7 of the
    target's std), which a 1e-7 nudge of one weight of a single process
    matches (6e-8 to 1.2e-7). A bug drifts far more: each rank's gradient
    taken as its own rows' mean (the uneven last step weighted wrong) gives
    2.5e-4."""
    base = ["--regressor", "--accumulate", 2, "--clip", 1.0, "--rows", 1779]
    base += ["--scheduler", "cosine"]
    run(tmp_path / "single.pt", *base)
    run(tmp_path / "ddp.pt", *base, torchrun=True)
    run(tmp_path / "nudged.pt", *base, "--nudge", 1e-7)
    single, ddp, nudged = (
        torch.load(tmp_path / f"{name}.pt")["prediction"]
        for name in ("single", "ddp", "nudged")
    )
    drift = float((ddp - single).abs().max())  # in units of the target's std
    assert drift < 1e-5
    assert drift < 20 * max(float((nudged - single).abs().max()), 6e-8)
