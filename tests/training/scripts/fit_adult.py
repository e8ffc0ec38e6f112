"""Fit a small Adult model; used by the kill-and-resume and DDP tests.

    python fit_adult.py OUT [--checkpoint DIR] [--kill-at-epoch N] [--rows N]
    torchrun --nproc_per_node 2 fit_adult.py OUT          # data parallel
    python fit_adult.py OUT --multitask    # income + hours-per-week, learned task
                                           # weights, sample weights
    python fit_adult.py OUT --multitask --weighting famo   # or nash, gradnorm
    python fit_adult.py OUT --pretrain     # contrastive pretraining instead of fit
                                           # (corruption 0: no draws that differ
                                           # between ranks)
    python fit_adult.py OUT --regressor --accumulate 2 --clip 1 --scheduler cosine
                                           # hours-per-week; --nudge 1e-7 adds that
                                           # to one weight before the first step

Writes the final weights to OUT (rank 0 only). --kill-at-epoch sends SIGKILL to
this process in the middle of that epoch (1-based), as a crash would.
"""

import argparse
import os
import signal
import sys

import numpy as np
import pandas as pd
import torch
from torch import nn

from widemm import WideDeepClassifier, WideDeepMultiTask, WideDeepRegressor
from widemm.datasets import load_adult
from widemm.training import Callback


class KillMidEpoch(Callback):
    def __init__(self, epoch: int):
        self.epoch, self.steps = epoch, 0

    def on_step_end(self, trainer, model, loss):
        if trainer.epoch + 1 == self.epoch:
            self.steps += 1
            if self.steps == 3:
                os.kill(os.getpid(), signal.SIGKILL)


class Nudge(Callback):
    """Add ``eps`` to one weight of the first linear layer as training starts:
    the size of a float sum taken in another order, on purpose."""

    def __init__(self, eps: float):
        self.eps = eps

    def on_fit_start(self, trainer, model):
        weight = next(m.weight for m in model.modules() if isinstance(m, nn.Linear))
        with torch.no_grad():
            weight.view(-1)[0] += self.eps


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("out")
    parser.add_argument("--checkpoint")
    parser.add_argument("--kill-at-epoch", type=int)
    parser.add_argument("--strategy", default="ddp")
    parser.add_argument("--rows", type=int, default=2000)
    parser.add_argument("--multitask", action="store_true")
    parser.add_argument("--weighting", default="uncertainty")
    parser.add_argument("--pretrain", action="store_true")
    parser.add_argument("--regressor", action="store_true")
    parser.add_argument("--accumulate", type=int, default=1)
    parser.add_argument("--clip", type=float)
    parser.add_argument("--scheduler", default="onecycle")
    parser.add_argument("--nudge", type=float)
    args = parser.parse_args()
    df = load_adult().sample(args.rows, random_state=0)
    y = df.pop("hours-per-week" if args.regressor else "income")
    fit = {}
    if args.multitask:
        y = pd.DataFrame({"income": y, "hours": df.pop("hours-per-week")})
        fit["sample_weight"] = np.where(np.arange(len(df)) % 4 == 0, 2.0, 1.0)
    estimator = WideDeepMultiTask if args.multitask else WideDeepClassifier
    estimator = WideDeepRegressor if args.regressor else estimator
    callbacks = [KillMidEpoch(args.kill_at_epoch)] if args.kill_at_epoch else []
    callbacks += [Nudge(args.nudge)] if args.nudge else []
    options = {"task_weighting": args.weighting} if args.multitask else {}
    model = estimator(
        **options,
        tab_model="mlp",  # TabM takes one width
        tab_params={"hidden_dims": (32, 16), "dropout": 0.0},
        fusion_params={"hidden_dims": (16,), "dropout": 0.0},
        max_epochs=4,
        batch_size=64,
        validation_fraction=0.1,
        n_iter_no_change=None,
        lr_scheduler=args.scheduler,
        random_state=0,
        checkpoint_dir=args.checkpoint,
        callbacks=callbacks or None,
        trainer_params={
            "strategy": args.strategy,
            "accumulate_grad_batches": args.accumulate,
            "clip_grad_norm": args.clip,
        },
    )
    if args.pretrain:
        model.pretrain(df, epochs=4, batch_size=64, corruption=0.0)
        weights, history = model.pretrained.weights, model.pretrained.history
    else:
        model.fit(df, y, **fit)
        weights, history = model.model_.state_dict(), model.history_
        if args.regressor:  # predictions in units of the target's std
            weights = {"prediction": torch.from_numpy(model.predict(df) / y.std())}
    if int(os.environ.get("RANK", "0")) == 0:
        torch.save(weights, args.out)
        print("history", history["epoch"].tolist(), file=sys.stderr)


if __name__ == "__main__":
    main()
