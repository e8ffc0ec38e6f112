"""The training loop used by the estimators, usable on its own."""

from __future__ import annotations

import dataclasses
import difflib
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch import nn

from widemm.data import FrameDataset, TrainData, make_loader, to_device
from widemm.models.layers import Backbone, LRScaled
from widemm.runtime import progress, report, resolve_device, seeded
from widemm.training.callbacks import (
    Callback,
    EarlyStopping,
    LRScheduler,
    ModelCheckpoint,
    Stateful,
)
from widemm.training.checkpoint import load_checkpoint
from widemm.training.distributed import Distributed, Strategy
from widemm.training.objective import Kind, Objective

Task = Kind  # a single-head objective's kind


@dataclass(frozen=True)
class TrainConfig:
    """Everything the Trainer needs to know, fixed for one run.

    Parameters
    ----------
    task : {"binary", "multilabel", "regression"} or Objective
        The loss and validation metrics: a kind of single head (BCE with logits
        and ROC AUC, or MSE and RMSE), or an :class:`~widemm.training.objective.
        Objective` of heads (multiclass, several tasks, weights, quantiles).
    max_epochs, batch_size : int
        Passes over the training data; rows per optimizer step over all ranks
        (each of N ranks takes batch_size / N of every batch).
    learning_rate, weight_decay : float
        AdamW's settings.
    lr_scheduler : {"onecycle", "cosine"} or None
        Stepped after every optimizer step (see ``callbacks.LRScheduler``).
    warmup_fraction : float
        With ``"cosine"``: linear warm-up over this fraction of the steps.
    n_iter_no_change : int or None
        Early stopping patience in epochs on the validation loss; the best
        weights are restored. None (or no validation set) trains every epoch.
    random_state : int or None
        Seeds the shuffling and dropout; a fixed value gives identical runs.
    verbose : int
        0 silent; 1 a progress bar over epochs (on a terminal); 2 over batches too.
    device : str
        ``"auto"`` picks CUDA when present, else the CPU.
    num_workers : int
        DataLoader worker processes for training batches; they pay off only when
        batches need work (decoding images), not for in-memory tensors.
    precision : {"32", "bf16", "fp16"}
        Mixed precision: the forward pass runs under ``torch.autocast`` in
        bfloat16 or float16 (fp16 with a ``GradScaler``); weights stay float32.
    accumulate_grad_batches : int
        Micro-batches whose gradients add up before each optimizer step.
    clip_grad_norm : float or None
        Clip the gradients' global norm to this before each step.
    activation_checkpointing : bool
        Recompute the trainable backbone blocks' activations in the backward pass
        instead of storing them: less memory, about a third more compute.
    checkpoint_dir : str or None
        Write the run's state there after every epoch (``ModelCheckpoint``);
        ``Trainer.fit(..., resume_from=...)`` continues such a run.
    strategy : {"ddp", "fsdp"}
        Under ``torchrun`` (see ``widemm.training.distributed``): replicate the
        model on every rank (DDP) or shard its parameters (FSDP).
    """

    task: Task | Objective
    max_epochs: int = 20
    batch_size: int = 256
    learning_rate: float = 1e-3
    weight_decay: float = 1e-5
    lr_scheduler: Literal["onecycle", "cosine"] | None = None
    warmup_fraction: float = 0.0
    n_iter_no_change: int | None = 5
    random_state: int | None = None
    verbose: int = 0
    device: str = "auto"
    num_workers: int = 0
    precision: Literal["32", "bf16", "fp16"] = "32"
    accumulate_grad_batches: int = 1
    clip_grad_norm: float | None = None
    activation_checkpointing: bool = False
    checkpoint_dir: str | os.PathLike[str] | None = None
    strategy: Strategy = "ddp"

    @classmethod
    def with_options(cls, options: Mapping[str, Any], **fixed: Any) -> TrainConfig:
        """Build a config from ``fixed`` fields plus user ``options``, checked.

        An unknown or doubly set option raises a ValueError naming it (and the
        closest field), not a bare TypeError from the constructor.
        """
        fields = {f.name for f in dataclasses.fields(cls)}
        for key in options:
            if key in fixed:
                raise ValueError(
                    f"trainer_params sets {key!r}, which the estimator sets from its "
                    f"own parameter; pass {key}= to the estimator instead."
                )
            if key not in fields:
                close = difflib.get_close_matches(key, sorted(fields), n=1)
                hint = f" Did you mean {close[0]!r}?" if close else ""
                raise ValueError(
                    f"trainer_params has unknown key {key!r}; TrainConfig fields: "
                    f"{sorted(fields - set(fixed))}.{hint}"
                )
        return cls(**fixed, **options)


def auto_schedule(
    batch_size: int | Literal["auto"], max_epochs: int | Literal["auto"], n_rows: int
) -> tuple[int, int]:
    """Resolve ``"auto"`` batch size and epochs for ``n_rows`` training rows.

    The rule: a batch of about ``n_rows / 32`` rows as a power of 2, between 16
    and 256, so a small table still gets 16-32 optimizer steps an epoch (a
    300-row table at 256 rows a batch would get one); then epochs enough for
    about 2,000 steps in all, between 20 and 200 (early stopping ends most runs
    sooner). 10,000 rows and more: 256 rows, 20 epochs. Given ints are kept.
    """
    if batch_size == "auto":
        power = round(np.log2(max(n_rows, 1) / 32))
        batch_size = int(np.clip(2**power, 16, 256))
    if max_epochs == "auto":
        steps = -(-n_rows // batch_size)
        max_epochs = int(np.clip(-(-2000 // max(steps, 1)), 20, 200))
    return batch_size, max_epochs


class Trainer:
    """Train a model that maps a batch to logits; report a history per epoch.

    Epoch ``e`` shuffles with seed ``(seed, e)`` and seeds dropout with
    ``seed + e``, so any epoch can be replayed exactly: a run resumed from a
    checkpoint ends with the weights of the uninterrupted run.

    Parameters
    ----------
    config : TrainConfig
        Loss, optimizer, schedule, precision, checkpoints and stopping rule.
    callbacks : sequence of Callback
        Notified around epochs and optimizer steps (see ``callbacks``). The
        Trainer adds ``LRScheduler``, ``EarlyStopping`` and ``ModelCheckpoint``
        as the config asks, after these.

    Attributes
    ----------
    should_stop : bool
        Set by a callback to end training after the current epoch.
    history : list of dict
        One row per epoch: ``epoch``, ``train_loss``, ``valid_loss``, the
        validation metric, ``lr`` and ``seconds``.
    optimizer, scaler, epoch, steps_per_epoch, seed, distributed
        The run's state, for callbacks.
    run : dict of str to str
        What identifies the run (the estimator's fingerprint of its settings and
        data); kept in checkpoints so a later run can tell whether to resume.
    """

    def __init__(
        self,
        config: TrainConfig,
        callbacks: Sequence[Callback] = (),
        run: Mapping[str, str] | None = None,
    ) -> None:
        self.config = config
        self.callbacks = list(callbacks)
        self.run = dict(run or {})
        self.distributed = Distributed.from_env()
        self.device = self.distributed.device(resolve_device(config.device))
        self.objective = Objective.of(config.task)
        self.should_stop = False
        self.history: list[dict[str, float]] = []

    def fit(
        self,
        model: nn.Module,
        train: TrainData,
        valid: FrameDataset | None = None,
        resume_from: str | Path | Mapping[str, Any] | None = None,
    ) -> list[dict[str, float]]:
        """Train ``model`` in place; return the per-epoch history.

        ``resume_from``, a checkpoint file or a state read from one (see
        ``state_dict``), continues the run that wrote it: a run that had finished
        or stopped early trains no further epoch.
        """
        cfg, dist = self.config, self.distributed
        if cfg.strategy == "fsdp" and cfg.checkpoint_dir is not None:
            raise ValueError(
                "checkpoint_dir is not supported with strategy='fsdp' yet: rank 0 "
                "holds only its shard of the weights."
            )
        dist.setup(self.device)
        model.to(self.device)
        if cfg.activation_checkpointing:
            for module in model.modules():
                if isinstance(module, Backbone):
                    module.enable_activation_checkpointing()
        net = dist.wrap(model, cfg.strategy)
        state = (
            load_checkpoint(resume_from, self.device)
            if isinstance(resume_from, str | Path)
            else resume_from
        )
        self.model, self.seed = model, _seed(cfg.random_state, state)
        loader = train.loader(
            cfg.batch_size, self.seed, dist.rank, dist.world_size, cfg.num_workers
        )
        accumulate = max(1, cfg.accumulate_grad_batches)
        self.steps_per_epoch = -(-len(loader) // accumulate)
        self.objective.to(self.device)
        groups = param_groups(model, cfg.learning_rate)
        if self.objective.log_vars is not None:  # learned task weights
            groups.append(
                {"params": [self.objective.log_vars], "lr": cfg.learning_rate}
            )
        self.optimizer = torch.optim.AdamW(
            groups,
            weight_decay=cfg.weight_decay,
            fused=self.device.type in ("cpu", "cuda"),  # one kernel: 4x faster steps
        )
        self.scaler = torch.amp.GradScaler(
            self.device.type, enabled=cfg.precision == "fp16"
        )
        self.active_callbacks = self._callbacks(valid is not None)
        self.should_stop, self.history = False, []
        for cb in self.active_callbacks:
            cb.on_fit_start(self, model)
        if state is not None:
            self.load_state_dict(state)
        first = len(self.history)
        epochs = progress(
            range(first, cfg.max_epochs if not self.should_stop else first),
            verbose=cfg.verbose > 0,
            desc="epochs",
        )
        for epoch in epochs:
            self.epoch, start = epoch, time.perf_counter()
            loader.set_epoch(epoch)
            for cb in self.active_callbacks:
                cb.on_epoch_start(self, model)
            row = {"epoch": epoch + 1, "lr": self.optimizer.param_groups[0]["lr"]}
            with seeded(self.seed + epoch):
                row["train_loss"] = self._train_epoch(net, model, loader)
            if valid is not None:
                row.update(self.evaluate(model, valid))
            row["seconds"] = time.perf_counter() - start
            self.history.append(row)
            if hasattr(epochs, "set_postfix"):  # a bar: a person watches
                epochs.set_postfix({k: v for k, v in row.items() if "loss" in k})
            elif dist.is_main:  # a log: one line per epoch
                report("epoch %d/%d: %s", epoch + 1, cfg.max_epochs, _figures(row),
                       verbose=cfg.verbose)  # fmt: skip
            for cb in self.active_callbacks:
                cb.on_epoch_end(self, model, row)
            if self.should_stop:
                break
        for cb in self.active_callbacks:
            cb.on_fit_end(self, model)
        if dist.is_main:
            report(self._summary(), verbose=cfg.verbose)
        return self.history

    def _summary(self) -> str:
        """One line on how the run ended: epochs, time, stopping, best figures."""
        if not self.history:
            return "no epoch to train (the run had finished)"
        last = self.history[-1]
        seconds = sum(row["seconds"] for row in self.history)
        done = f"{len(self.history)} epochs in {seconds:.1f} s"
        stop = next(
            (c for c in self.active_callbacks if isinstance(c, EarlyStopping)), None
        )
        if stop is None or stop.best_epoch == 0:
            return f"trained {done}; last epoch: {_figures(last)}"
        best = self.history[stop.best_epoch - 1]
        how = "stopped early" if self.should_stop else "reached max_epochs"
        return (
            f"trained {done}, {how}; kept the best epoch, {stop.best_epoch}: "
            f"{_figures(best)}"
        )

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue this run after the current epoch."""
        return {
            "model": self.model.state_dict(),
            "objective": self.objective.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scaler": self.scaler.state_dict(),
            "callbacks": {
                key: cb.state_dict()
                for key, cb in _keyed(self.active_callbacks).items()
                if isinstance(cb, Stateful)
            },
            "history": self.history,
            "should_stop": self.should_stop,
            "seed": self.seed,
            "run": self.run,
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Put a ``state_dict()`` back (during ``fit``, after ``on_fit_start``)."""
        if state["seed"] != self.seed:
            raise ValueError(
                f"The checkpoint was written by a run with seed {state['seed']}, "
                f"this run has seed {self.seed}: its data order would differ."
            )
        self.model.load_state_dict(state["model"])
        self.objective.load_state_dict(state["objective"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scaler.load_state_dict(state["scaler"])
        for key, cb in _keyed(self.active_callbacks).items():
            if key in state["callbacks"] and isinstance(cb, Stateful):
                cb.load_state_dict(state["callbacks"][key])
        self.history = list(state["history"])
        self.should_stop = bool(state["should_stop"])

    def _callbacks(self, has_valid: bool) -> list[Callback]:
        cfg = self.config
        callbacks = list(self.callbacks)
        if cfg.lr_scheduler is not None:
            callbacks.append(
                LRScheduler(cfg.lr_scheduler, warmup_fraction=cfg.warmup_fraction)
            )
        if has_valid and cfg.n_iter_no_change is not None:
            callbacks.append(EarlyStopping(patience=cfg.n_iter_no_change))
        if cfg.checkpoint_dir is not None:
            callbacks.append(ModelCheckpoint(cfg.checkpoint_dir))
        return callbacks

    def _train_epoch(self, net: nn.Module, model: nn.Module, loader: Any) -> float:
        """One epoch; return the mean training loss over all ranks' rows.

        Each rank sums its rows' losses; before each optimizer step the gradients
        are scaled by world_size / (rows of the step over all ranks), so the step
        is the single-process step on the same global batch (DDP averages the
        ranks' gradients), whatever the ranks' shares of it.
        """
        cfg, optimizer, dist = self.config, self.optimizer, self.distributed
        accumulate = max(1, cfg.accumulate_grad_batches)
        dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(cfg.precision)
        net.train()
        total = torch.zeros((), device=self.device, dtype=torch.float64)
        n_rows, step_rows = 0.0, 0.0
        n_batches = len(loader)  # a stream counts its chunks: once per epoch
        batches = progress(loader, verbose=cfg.verbose > 1, desc="batches")
        for i, batch in enumerate(batches):
            batch = to_device(batch, self.device)
            with torch.autocast(self.device.type, dtype, enabled=dtype is not None):
                logits = net(batch)
            weight = batch.get("weight")
            loss = self.objective(logits.float(), batch["target"], weight)
            if not torch.isfinite(loss):
                raise FloatingPointError(
                    f"Training loss is {loss.item()} at epoch {self.epoch + 1}, "
                    f"batch {i + 1} of {n_batches}. Lower learning_rate, try "
                    "clip_grad_norm, or check that batch's inputs for extreme values."
                )
            self.scaler.scale(loss).backward()
            rows = len(batch["target"]) if weight is None else float(weight.sum())
            step_rows += rows
            if (i + 1) % accumulate == 0 or i + 1 == n_batches:
                global_rows = max(dist.sum(step_rows), 1e-12)
                grads = [p.grad for p in net.parameters() if p.grad is not None]
                torch._foreach_mul_(grads, dist.world_size / global_rows)
                self._scale_objective_grads(global_rows)
                if cfg.clip_grad_norm is not None:
                    self.scaler.unscale_(optimizer)
                    nn.utils.clip_grad_norm_(net.parameters(), cfg.clip_grad_norm)
                self.scaler.step(optimizer)
                self.scaler.update()
                optimizer.zero_grad(set_to_none=True)
                step_rows = 0
                if self.active_callbacks:
                    value = float(loss.detach()) / max(rows, 1)
                    for cb in self.active_callbacks:
                        cb.on_step_end(self, model, value)
            total += loss.detach()
            n_rows += rows
        # The next batch's loss catches weights gone non-finite but for the epoch's
        # last step: check its outputs on that batch, so no run ends broken.
        model.eval()
        with torch.no_grad():
            finite = bool(model(batch).isfinite().all())
        net.train()
        if not finite:
            raise FloatingPointError(
                f"The model's outputs became NaN/inf in the last optimizer step of "
                f"epoch {self.epoch + 1} (batch {n_batches} of {n_batches}). Lower "
                "learning_rate or set clip_grad_norm."
            )
        return dist.mean(total, n_rows)

    def _scale_objective_grads(self, global_rows: float) -> None:
        """Learned task weights: sum their gradients over ranks, per global row."""
        log_vars = self.objective.log_vars
        if log_vars is not None and log_vars.grad is not None:
            self.distributed.all_reduce_(log_vars.grad)
            log_vars.grad /= global_rows

    def evaluate(self, model: nn.Module, dataset: FrameDataset) -> dict[str, float]:
        """Return the validation loss and metric of ``model`` on ``dataset``."""
        logits = torch.from_numpy(self.predict(model, dataset))
        if not logits.isfinite().all():
            raise FloatingPointError(
                f"The model's validation outputs are NaN/inf after epoch "
                f"{getattr(self, 'epoch', -1) + 1}. Lower learning_rate or set "
                "clip_grad_norm."
            )
        target, weight = dataset.inputs["target"], dataset.inputs.get("weight")
        with torch.no_grad():
            loss = float(
                self.objective(*to_device([logits, target, weight], self.device))
            )
        rows = len(target) if weight is None else float(weight.sum())
        row = {"valid_loss": loss / max(rows, 1e-12)}
        row.update(self.objective.metrics(logits, target))
        if self.objective.log_vars is not None:
            row.update(
                {f"weight_{k}": v for k, v in self.objective.task_weights().items()}
            )
        return row

    def predict(
        self, model: nn.Module, dataset: FrameDataset, batch_size: int = 4096
    ) -> np.ndarray:
        """Logits of shape (n_rows, n_outputs), in row order."""
        if next(model.parameters()).device != self.device:
            model.to(self.device)
        if model.training:  # eval() visits every submodule: 15% of a 1-row predict
            model.eval()
        loader: Any = make_loader(dataset, batch_size, shuffle=False)
        if len(dataset) <= batch_size:  # one batch: skip the DataLoader's overhead
            loader = [dataset[slice(0, len(dataset))]]
        with torch.inference_mode():
            out = [
                model(to_device(batch, self.device)).float().cpu() for batch in loader
            ]
        return torch.cat(out).numpy()


def _seed(random_state: int | None, state: Mapping[str, Any] | None) -> int:
    """Return the run's seed: the given one, the resumed run's, or a random one."""
    if random_state is not None:
        return random_state
    if state is not None:
        return int(state["seed"])
    return int(torch.randint(2**31 - 1, ()))


def _figures(row: Mapping[str, float]) -> str:
    """Format a history row's losses and metrics: ``train_loss 0.3412, ...``."""
    skip = ("epoch", "lr", "seconds")
    figures = {k: v for k, v in row.items() if isinstance(v, int | float)}
    return ", ".join(f"{k} {v:.4g}" for k, v in figures.items() if k not in skip)


def _keyed(callbacks: Sequence[Callback]) -> dict[str, Callback]:
    """Callbacks by class name and rank among their class: EarlyStopping:0, ..."""
    keys: dict[str, Callback] = {}
    for cb in callbacks:
        name = type(cb).__name__
        keys[f"{name}:{sum(k.startswith(name + ':') for k in keys)}"] = cb
    return keys


def param_groups(model: nn.Module, learning_rate: float) -> list[dict[str, Any]]:
    """Parameters grouped by learning rate.

    A module with an ``lr_scale`` attribute (``LRScaled``: a pretrained backbone,
    say) trains its parameters at ``learning_rate * lr_scale``; the rest at
    ``learning_rate``.
    Frozen parameters are included: they get no gradient, so no update, until a
    callback unfreezes them (see ``UnfreezeBackbones``).
    """
    scales: dict[int, float] = {}
    for module in model.modules():
        if isinstance(module, LRScaled):
            scale = float(module.lr_scale)
            scales.update((id(p), scale) for p in module.parameters())
    groups: dict[float, list[nn.Parameter]] = {}
    for p in model.parameters():
        groups.setdefault(scales.get(id(p), 1.0), []).append(p)
    return [{"params": ps, "lr": learning_rate * s} for s, ps in groups.items()]
