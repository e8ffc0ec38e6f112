"""The training loop used by the estimators, usable on its own."""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from widemm.data import FrameDataset, make_loader, to_device
from widemm.models.layers import BackboneEncoder
from widemm.training.callbacks import Callback, EarlyStopping, LRScheduler
from widemm.training.checkpoint import LAST, ModelCheckpoint, load, restore
from widemm.training.distributed import Distributed, Strategy

log = logging.getLogger(__name__)

Task = Literal["binary", "multiclass", "regression"]


@dataclass(frozen=True)
class TrainConfig:
    """Everything the Trainer needs to know, fixed for one run.

    Parameters
    ----------
    task : {"binary", "multiclass", "regression"}
        Picks the loss (BCE with logits, cross-entropy, MSE) and the metric
        (ROC AUC, accuracy, RMSE) reported on the validation set.
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
        Write the run's state there after every epoch (``ModelCheckpoint``) and
        resume from ``last.pt`` when a previous run left one.
    strategy : {"ddp", "fsdp"}
        Under ``torchrun`` (see ``widemm.training.distributed``): replicate the
        model on every rank (DDP) or shard its parameters (FSDP).
    """

    task: Task
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
    checkpoint_dir: str | None = None
    strategy: Strategy = "ddp"


def resolve_device(device: str) -> torch.device:
    """``"auto"`` -> CUDA when available, else CPU; anything else as given."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


@contextmanager
def seeded(seed: int | None) -> Iterator[None]:
    """Run a block with torch's RNG seeded, restoring the caller's RNG state after."""
    with torch.random.fork_rng(devices=[]):
        if seed is not None:
            torch.manual_seed(seed)
        yield


def progress(items: Iterable[Any], *, verbose: bool, **kwargs: Any) -> Any:
    """Wrap ``items`` in tqdm if asked for and stderr is a terminal."""
    show = verbose and sys.stderr.isatty()
    return tqdm(items, leave=False, **kwargs) if show else items


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
    """

    def __init__(self, config: TrainConfig, callbacks: Sequence[Callback] = ()) -> None:
        self.config = config
        self.callbacks = list(callbacks)
        self.distributed = Distributed.from_env()
        self.device = self.distributed.device(resolve_device(config.device))
        self.loss_fn = _LOSSES[config.task]
        self.should_stop = False
        self.history: list[dict[str, float]] = []

    def fit(
        self,
        model: nn.Module,
        train: Any,
        valid: FrameDataset | None = None,
        resume_from: str | Path | None = None,
    ) -> list[dict[str, float]]:
        """Train ``model`` in place; return the per-epoch history.

        ``resume_from`` (or a ``last.pt`` in ``config.checkpoint_dir``) continues
        the run that wrote that checkpoint.
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
                if isinstance(module, BackboneEncoder):
                    module.enable_activation_checkpointing()
        net = dist.wrap(model, cfg.strategy)
        resume_from = resume_from or self._last_checkpoint()
        state = load(resume_from, self.device) if resume_from else None
        self.seed = _seed(cfg.random_state, state)
        per_rank = _per_rank(cfg.batch_size, dist.world_size)
        if isinstance(train, FrameDataset):
            loader: Any = train.loader(
                per_rank, self.seed, dist.rank, dist.world_size, cfg.num_workers
            )
        else:  # a stream (widemm.streaming): transforms its chunks itself
            loader = train.loader(per_rank, self.seed, dist.rank, dist.world_size)
        accumulate = max(1, cfg.accumulate_grad_batches)
        self.steps_per_epoch = -(-len(loader) // accumulate)
        self.optimizer = torch.optim.AdamW(
            param_groups(model, cfg.learning_rate),
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
        first = restore(self, model, state, str(resume_from)) if state else 0
        epochs = progress(
            range(first, cfg.max_epochs), verbose=cfg.verbose > 0, desc="epochs"
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
            log.info("epoch %s", row)
            if hasattr(epochs, "set_postfix"):
                epochs.set_postfix({k: v for k, v in row.items() if "loss" in k})
            for cb in self.active_callbacks:
                cb.on_epoch_end(self, model, row)
            if self.should_stop:
                break
        for cb in self.active_callbacks:
            cb.on_fit_end(self, model)
        return self.history

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

    def _last_checkpoint(self) -> Path | None:
        if self.config.checkpoint_dir is None:
            return None
        path = Path(self.config.checkpoint_dir) / LAST
        return path if path.exists() else None

    def _train_epoch(self, net: nn.Module, model: nn.Module, loader: Any) -> float:
        cfg, optimizer = self.config, self.optimizer
        accumulate = max(1, cfg.accumulate_grad_batches)
        dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(cfg.precision)
        net.train()
        total, n_rows = torch.zeros((), device=self.device), 0
        n_batches = len(loader)  # a stream counts its chunks: once per epoch
        batches = progress(loader, verbose=cfg.verbose > 1, desc="batches")
        for i, batch in enumerate(batches):
            batch = to_device(batch, self.device)
            with torch.autocast(self.device.type, dtype, enabled=dtype is not None):
                logits = net(batch)
            loss = self.loss_fn(logits.float(), batch["target"])
            if not torch.isfinite(loss):
                raise FloatingPointError(
                    f"Training loss is {loss.item()} at epoch {self.epoch + 1}, "
                    f"batch {i + 1} of {n_batches}. Lower learning_rate, try "
                    "clip_grad_norm, or check that batch's inputs for extreme values."
                )
            self.scaler.scale(loss / accumulate).backward()
            if (i + 1) % accumulate == 0 or i + 1 == n_batches:
                if cfg.clip_grad_norm is not None:
                    self.scaler.unscale_(optimizer)
                    nn.utils.clip_grad_norm_(net.parameters(), cfg.clip_grad_norm)
                self.scaler.step(optimizer)
                self.scaler.update()
                optimizer.zero_grad(set_to_none=True)
                if self.active_callbacks:
                    value = float(loss.detach())
                    for cb in self.active_callbacks:
                        cb.on_step_end(self, model, value)
            total += loss.detach() * len(batch["target"])
            n_rows += len(batch["target"])
        return self.distributed.mean(total, n_rows)

    def evaluate(self, model: nn.Module, dataset: FrameDataset) -> dict[str, float]:
        """Return the validation loss and metric of ``model`` on ``dataset``."""
        logits = torch.from_numpy(self.predict(model, dataset))
        target = dataset.inputs["target"]
        loss = float(self.loss_fn(logits, target))
        return {"valid_loss": loss, **_metric(self.config.task, logits, target)}

    def predict(
        self, model: nn.Module, dataset: FrameDataset, batch_size: int = 4096
    ) -> np.ndarray:
        """Logits of shape (n_rows, n_outputs), in row order."""
        if next(model.parameters()).device != self.device:
            model.to(self.device)
        model.eval()
        loader: Any = make_loader(dataset, batch_size, shuffle=False)
        if len(dataset) <= batch_size:  # one batch: skip the DataLoader's overhead
            loader = [dataset[slice(0, len(dataset))]]
        with torch.inference_mode():
            out = [
                model(to_device(batch, self.device)).float().cpu() for batch in loader
            ]
        return torch.cat(out).numpy()


def _seed(random_state: int | None, state: dict[str, Any] | None) -> int:
    """Return the run's seed: the given one, the resumed run's, or a random one."""
    if random_state is not None:
        return random_state
    if state is not None:
        return int(state["seed"])
    return int(torch.randint(2**31 - 1, ()))


def _per_rank(batch_size: int, world_size: int) -> int:
    if batch_size % world_size:
        raise ValueError(
            f"batch_size {batch_size} does not split evenly over {world_size} ranks."
        )
    return batch_size // world_size


def param_groups(model: nn.Module, learning_rate: float) -> list[dict[str, Any]]:
    """Parameters grouped by learning rate.

    A module with an ``lr_scale`` attribute (a pretrained backbone, say) trains
    its parameters at ``learning_rate * lr_scale``; the rest at ``learning_rate``.
    Frozen parameters are included: they get no gradient, so no update, until a
    callback unfreezes them (see ``UnfreezeBackbones``).
    """
    scales: dict[int, float] = {}
    for module in model.modules():
        if hasattr(module, "lr_scale"):
            scale = float(module.lr_scale)  # type: ignore[arg-type]
            scales.update((id(p), scale) for p in module.parameters())
    groups: dict[float, list[nn.Parameter]] = {}
    for p in model.parameters():
        groups.setdefault(scales.get(id(p), 1.0), []).append(p)
    return [{"params": ps, "lr": learning_rate * s} for s, ps in groups.items()]


def _binary_loss(logits: Tensor, target: Tensor) -> Tensor:
    return nn.functional.binary_cross_entropy_with_logits(logits[:, 0], target.float())


def _multiclass_loss(logits: Tensor, target: Tensor) -> Tensor:
    return nn.functional.cross_entropy(logits, target.long())


def _regression_loss(logits: Tensor, target: Tensor) -> Tensor:
    return nn.functional.mse_loss(logits[:, 0], target.float())


_LOSSES = {
    "binary": _binary_loss,
    "multiclass": _multiclass_loss,
    "regression": _regression_loss,
}


def _metric(task: Task, logits: Tensor, target: Tensor) -> dict[str, float]:
    from sklearn.metrics import roc_auc_score

    y = target.numpy()
    if task == "binary":
        auc = (
            roc_auc_score(y, logits[:, 0].numpy()) if len(np.unique(y)) == 2 else np.nan
        )
        return {"valid_auc": float(auc)}
    if task == "multiclass":
        return {"valid_accuracy": float((logits.argmax(1).numpy() == y).mean())}
    return {"valid_rmse": float(np.sqrt(np.mean((logits[:, 0].numpy() - y) ** 2)))}
