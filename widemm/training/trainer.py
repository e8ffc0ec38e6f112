"""The training loop used by the estimators, usable on its own."""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from widemm.data import FrameDataset, make_loader, to_device
from widemm.training.callbacks import Callback, EarlyStopping

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
        Passes over the training data, rows per step.
    learning_rate, weight_decay : float
        AdamW's settings.
    lr_scheduler : {"onecycle", "cosine"} or None
        Stepped every batch; None keeps the learning rate constant.
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
    """

    task: Task
    max_epochs: int = 20
    batch_size: int = 256
    learning_rate: float = 1e-3
    weight_decay: float = 1e-5
    lr_scheduler: Literal["onecycle", "cosine"] | None = None
    n_iter_no_change: int | None = 5
    random_state: int | None = None
    verbose: int = 0
    device: str = "auto"
    num_workers: int = 0


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

    Parameters
    ----------
    config : TrainConfig
        Loss, optimizer, schedule and stopping rule.
    callbacks : sequence of Callback
        Notified at fit start, each epoch end and fit end. An ``EarlyStopping`` is
        added when ``config.n_iter_no_change`` is set and a validation set given.

    Attributes
    ----------
    should_stop : bool
        Set by a callback to end training after the current epoch.
    history : list of dict
        One row per epoch: ``epoch``, ``train_loss``, ``valid_loss``, the
        validation metric, ``lr`` and ``seconds``.
    """

    def __init__(self, config: TrainConfig, callbacks: Sequence[Callback] = ()) -> None:
        self.config = config
        self.callbacks = list(callbacks)
        self.device = resolve_device(config.device)
        self.loss_fn = _LOSSES[config.task]
        self.should_stop = False
        self.history: list[dict[str, float]] = []

    def fit(
        self, model: nn.Module, train: FrameDataset, valid: FrameDataset | None = None
    ) -> list[dict[str, float]]:
        """Train ``model`` in place; return the per-epoch history."""
        cfg = self.config
        model.to(self.device)
        generator = torch.Generator().manual_seed(cfg.random_state or 0)
        loader = make_loader(
            train,
            cfg.batch_size,
            shuffle=True,
            generator=generator,
            num_workers=cfg.num_workers,
        )
        optimizer = torch.optim.AdamW(
            param_groups(model, cfg.learning_rate), weight_decay=cfg.weight_decay
        )
        scheduler = _make_scheduler(optimizer, cfg, len(loader))
        callbacks = list(self.callbacks)
        if valid is not None and cfg.n_iter_no_change is not None:
            callbacks.append(EarlyStopping(patience=cfg.n_iter_no_change))
        self.should_stop, self.history = False, []
        for cb in callbacks:
            cb.on_fit_start(self, model)
        epochs = progress(range(cfg.max_epochs), verbose=cfg.verbose > 0, desc="epochs")
        with seeded(cfg.random_state):
            for epoch in epochs:
                start = time.perf_counter()
                row = {"epoch": epoch + 1, "lr": optimizer.param_groups[0]["lr"]}
                row["train_loss"] = self._train_epoch(
                    model, optimizer, scheduler, loader
                )
                if valid is not None:
                    row.update(self.evaluate(model, valid))
                row["seconds"] = time.perf_counter() - start
                self.history.append(row)
                log.info("epoch %s", row)
                if hasattr(epochs, "set_postfix"):
                    epochs.set_postfix({k: v for k, v in row.items() if "loss" in k})
                for cb in callbacks:
                    cb.on_epoch_end(self, model, row)
                if self.should_stop:
                    break
        for cb in callbacks:
            cb.on_fit_end(self, model)
        return self.history

    def _train_epoch(
        self,
        model: nn.Module,
        optimizer: torch.optim.Optimizer,
        scheduler: torch.optim.lr_scheduler.LRScheduler | None,
        loader: Iterable[Any],
    ) -> float:
        model.train()
        total, n_rows = torch.zeros((), device=self.device), 0
        for batch in progress(loader, verbose=self.config.verbose > 1, desc="batches"):
            batch = to_device(batch, self.device)
            loss = self.loss_fn(model(batch), batch["target"])
            loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            if scheduler is not None:
                scheduler.step()
            total += loss.detach() * len(batch["target"])
            n_rows += len(batch["target"])
        epoch_loss = total.item() / n_rows  # the one host sync of the epoch
        if not np.isfinite(epoch_loss):
            raise FloatingPointError(
                f"Training loss is {epoch_loss} in epoch {len(self.history) + 1}. "
                "Lower learning_rate or check the inputs for extreme values."
            )
        return epoch_loss

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


def param_groups(model: nn.Module, learning_rate: float) -> list[dict[str, Any]]:
    """Trainable parameters grouped by learning rate.

    A module with an ``lr_scale`` attribute (a pretrained backbone, say) trains
    its parameters at ``learning_rate * lr_scale``; the rest at ``learning_rate``.
    """
    scales: dict[int, float] = {}
    for module in model.modules():
        if hasattr(module, "lr_scale"):
            scale = float(module.lr_scale)  # type: ignore[arg-type]
            scales.update((id(p), scale) for p in module.parameters())
    groups: dict[float, list[nn.Parameter]] = {}
    for p in model.parameters():
        if p.requires_grad:
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


def _make_scheduler(
    optimizer: torch.optim.Optimizer, cfg: TrainConfig, steps_per_epoch: int
) -> torch.optim.lr_scheduler.LRScheduler | None:
    total = max(1, cfg.max_epochs * steps_per_epoch)
    if cfg.lr_scheduler == "onecycle":
        return torch.optim.lr_scheduler.OneCycleLR(
            optimizer, max_lr=cfg.learning_rate, total_steps=total
        )
    if cfg.lr_scheduler == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=total)
    if cfg.lr_scheduler is None:
        return None
    raise ValueError(
        f"lr_scheduler must be 'onecycle', 'cosine' or None, got {cfg.lr_scheduler!r}."
    )
