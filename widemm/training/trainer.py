"""The training loop used by the estimators, usable on its own."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from widemm.data import FrameDataset, TrainData, make_loader, to_device
from widemm.execution import log_line, progress, resolve_device, seeded
from widemm.models.layers import Backbone, param_groups
from widemm.training.callbacks import (
    Callback,
    EarlyStopping,
    LRScheduler,
    ModelCheckpoint,
    Stateful,
)
from widemm.training.config import TrainConfig, auto_patience
from widemm.training.distributed import Distributed
from widemm.training.nash import Representation
from widemm.training.objective import Objective


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
        self.objective = Objective.of(config.objective)
        self.should_stop = False
        self.history: list[dict[str, float]] = []
        self.valid: FrameDataset | None = None

    def fit(
        self,
        model: nn.Module,
        train: TrainData,
        valid: FrameDataset | None = None,
        state: Mapping[str, Any] | None = None,
    ) -> list[dict[str, float]]:
        """Train ``model`` in place; return the per-epoch history.

        ``state``, a ``state_dict()`` (as ``training.checkpoint.plan_run`` reads
        it from a checkpoint), continues the run that wrote it: a run that had
        finished or stopped early trains no further epoch. The run's seed is
        ``config.random_state`` (a random one when None), which must be the
        state's.
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
        self.model, self.valid = model, valid
        self.seed = (
            int(torch.randint(2**31 - 1, ()))
            if cfg.random_state is None
            else cfg.random_state
        )
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
        n_rows = len(loader) * cfg.batch_size  # about: whole global batches
        self.active_callbacks = self._callbacks(valid is not None, n_rows)
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
            keep = self.objective.needs_representation
            with seeded(self.seed + epoch), Representation(model, keep) as shared:
                row["train_loss"] = self._train_epoch(net, model, loader, shared)
            if valid is not None:
                row.update(self.evaluate(model, valid))
            row["seconds"] = time.perf_counter() - start
            self.history.append(row)
            if hasattr(epochs, "set_postfix"):  # a bar: a person watches
                epochs.set_postfix({k: v for k, v in row.items() if "loss" in k})
            elif dist.is_main:  # a log: one line per epoch
                done = f"{epoch + 1}/{cfg.max_epochs}"
                log_line("epoch %s: %s", done, _figures(row), verbose=cfg.verbose)
            for cb in self.active_callbacks:
                cb.on_epoch_end(self, model, row)
            if self.should_stop:
                break
        for cb in self.active_callbacks:
            cb.on_fit_end(self, model)
        if dist.is_main:
            log_line(self._summary(), verbose=cfg.verbose)
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
        how = "stopped early" if self.should_stop else "reached max_epochs"
        kept = f"the best epoch, {stop.best_epoch}"
        if stop.averaged > 1:
            kept = f"the mean of epochs {stop.best_epoch}-"
            kept += str(stop.best_epoch + stop.averaged - 1)
        return f"trained {done}, {how}; kept {kept}: {_figures(stop.kept_figures)}"

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

    def _callbacks(self, has_valid: bool, n_rows: int) -> list[Callback]:
        cfg = self.config
        patience = auto_patience(cfg.n_iter_no_change, n_rows)
        callbacks = list(self.callbacks)
        if cfg.lr_scheduler is not None:
            callbacks.append(
                LRScheduler(cfg.lr_scheduler, warmup_fraction=cfg.warmup_fraction)
            )
        if has_valid and patience is not None:
            stop = EarlyStopping(patience=patience, average=cfg.average_epochs)
            callbacks.append(stop)
        if cfg.checkpoint_dir is not None:
            callbacks.append(ModelCheckpoint(cfg.checkpoint_dir))
        return callbacks

    def _train_epoch(
        self, net: nn.Module, model: nn.Module, loader: Any, shared: Representation
    ) -> float:
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
            step, loss = self.objective.step_loss(
                logits.float(), batch["target"], weight, dist.all_reduce_, shared.value
            )
            if not torch.isfinite(step):
                raise FloatingPointError(
                    f"Training loss is {loss.item()} at epoch {self.epoch + 1}, "
                    f"batch {i + 1} of {n_batches}. Lower learning_rate, try "
                    "clip_grad_norm, or check that batch's inputs for extreme values."
                )
            self.scaler.scale(step).backward()
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
                if self.objective.famo is not None:  # the batch after the step
                    with (
                        torch.no_grad(),
                        torch.autocast(
                            self.device.type, dtype, enabled=dtype is not None
                        ),
                    ):
                        after = net(batch)
                    self.objective.balance(after, batch, dist.all_reduce_)
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

    def validate(self, model: nn.Module) -> dict[str, float]:
        """Return ``model``'s losses and metrics on the validation rows of ``fit``."""
        if self.valid is None:
            raise ValueError("This run has no validation rows.")
        return self.evaluate(model, self.valid)

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
        if len(self.objective.heads) > 1:  # each task's, on the baselines' scale
            if target.dim() == 1:
                target = target.unsqueeze(1)
            each = weight if weight is not None else torch.ones(len(target))
            with torch.no_grad():
                losses = self.objective.losses(logits, target, each)
            for head, value in zip(self.objective.heads, losses, strict=True):
                row[f"valid_{head.name}_loss"] = float(value) / max(rows, 1e-12)
        row.update(self.objective.metrics(logits, target))
        if self.objective.weighting != "fixed":
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
