"""Contrastive pretraining on unlabeled rows, and row embeddings."""

from __future__ import annotations

import dataclasses
from itertools import combinations
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import torch

from widemm.data import FrameDataset, to_device
from widemm.pipeline import FeaturePipeline
from widemm.runtime import seeded
from widemm.training import Callback, Trainer
from widemm.training.checkpoint import frame_digest, plan_run
from widemm.training.contrastive import (
    Contrasting,
    ContrastiveObjective,
    pooled,
)
from widemm.validation import check_frame

if TYPE_CHECKING:
    from widemm.estimators.base import BaseWideDeep
    from widemm.models import WideDeep


def pretrain(
    estimator: BaseWideDeep,
    X: pd.DataFrame,
    *,
    epochs: int,
    batch_size: int,
    projection_dim: int,
    corruption: float,
    learning_rate: float,
) -> list[dict[str, float]]:
    """Fit the estimator's pipeline on ``X`` and train its encoders without labels.

    Returns the per-epoch history. The estimator keeps the pipeline
    (``pipeline_``, with ``projection_dim_``) and the trained weights
    (``pretrained_``) that its next ``fit`` starts from. The ``Trainer`` runs
    it (see ``widemm.training.contrastive.Contrasting``): under ``torchrun``
    each rank takes its share of every batch; with ``checkpoint_dir`` the run
    writes ``<checkpoint_dir>/pretrain/last.pt`` after every epoch and resumes
    from it; the estimator's callbacks and log see its epochs.
    """
    X = check_frame(estimator, X, reset=True)
    for name, value, low in (
        ("epochs", epochs, 0),
        ("batch_size", batch_size, 2),
        ("projection_dim", projection_dim, 1),
    ):
        if not isinstance(value, int | np.integer) or value < low:
            raise ValueError(
                f"pretrain: {name} must be an int >= {low}, got {value!r}."
            )
    if not 0 <= corruption < 1:
        raise ValueError(f"pretrain: corruption must be in [0, 1), got {corruption!r}.")
    params = estimator.get_params(deep=False)
    options = dict(
        epochs=epochs,
        batch_size=batch_size,
        projection_dim=projection_dim,
        corruption=corruption,
        learning_rate=learning_rate,
    )
    settings = estimator._run_settings()
    folder = estimator.checkpoint_dir
    folder = None if folder is None else Path(folder) / "pretrain"
    run, seed, state = plan_run(
        folder, {**settings, "pretrain": repr(options)}, {"data": frame_digest(X)}
    )
    with seeded(seed):
        pipeline = FeaturePipeline(
            **{k: params[k] for k in FeaturePipeline._get_param_names()}
        ).fit(X)
        pipeline.projection_dim_ = projection_dim
        model = pipeline.build_model({})
        data = FrameDataset(pipeline.inputs(X, model), torch.zeros(len(X), 1))
        _check_pairs(model, data)
        contrasting = Contrasting(model, corruption)
        config = dataclasses.replace(
            estimator._config(
                seed,
                ContrastiveObjective(),
                batch_size=min(batch_size, len(data)),
                max_epochs=epochs,
            ),
            learning_rate=learning_rate,
            n_iter_no_change=None,
            checkpoint_dir=folder,
        )
        callbacks = [*(estimator.callbacks or ()), _Temperature()]
        history = Trainer(config, callbacks, run=run).fit(
            contrasting, data, None, state
        )
    model.cpu()
    estimator.pipeline_ = pipeline
    estimator.pretrained_ = {
        k: v.detach().clone() for k, v in model.state_dict().items()
    }
    return [
        {("contrastive_loss" if k == "train_loss" else k): v for k, v in row.items()}
        for row in history
    ]


class _Temperature(Callback):
    """Add the learned temperature to each epoch's history row."""

    def on_epoch_end(self, trainer: Any, model: Any, row: dict[str, float]) -> None:
        row["temperature"] = model.temperature()


def _check_pairs(model: WideDeep, data: FrameDataset) -> None:
    """Refuse data where no pair of modalities is present in 2 rows."""
    slots = list(model.encoders)
    if len(slots) == 1:
        return
    everyone = torch.ones(len(data), dtype=torch.bool)
    present = {
        k: v["present"].bool()
        for k, v in data.inputs.items()
        if k in slots and isinstance(v, dict) and "present" in v
    }
    for pair in combinations(slots, 2):
        both = everyone.clone()
        for slot in pair:
            both &= present.get(slot, everyone)
        if int(both.sum()) >= 2:
            return
    raise ValueError(
        "No pair of modalities is present in 2 rows: nothing to contrast. "
        "Pretraining needs 2+ modalities per row, or a table alone."
    )


def embed(
    estimator: BaseWideDeep, model: WideDeep, X: pd.DataFrame, column: Any = None
) -> np.ndarray:
    """Return each row's fused embedding, or one input column's embedding.

    ``column``: an input column (text or image: its slot's embedding; a tabular
    column: the whole table's). Embeddings are the projected ones when the model
    was pretrained.
    """
    pipeline = estimator.pipeline_
    X = check_frame(estimator, X, reset=False)
    slot = None if column is None else _slot(pipeline, column)
    data = FrameDataset(pipeline.inputs(X, model))
    device = next(model.parameters()).device
    out = []
    model.eval()
    with torch.inference_mode():
        for start in range(0, len(data), 1024):
            batch = to_device(data[slice(start, start + 1024)], device)
            if slot is not None:
                out.append(pooled(model.embed(batch)[0][slot]).float().cpu())
            else:
                out.append(pooled(model.fused(batch)).float().cpu())
    return torch.cat(out).numpy()


def _slot(pipeline: FeaturePipeline, column: Any) -> str:
    schema = pipeline.schema_
    slots = {c: s for s, c in {**schema.text_slots, **schema.image_slots}.items()}
    name = str(column)  # as check_frame names X's columns (0 -> "0")
    if name in slots:
        return slots[name]
    if name in schema.tab_cols:
        return "tab"
    raise ValueError(
        f"embed(column={column!r}): not a column the model reads. Its columns: "
        f"{list(schema.deep_cols)}."
    )


class Pretraining:
    """``pretrain`` and ``embed`` for the estimators (mixed into ``BaseWideDeep``)."""

    def pretrain(
        self,
        X: pd.DataFrame,
        *,
        epochs: int = 20,
        batch_size: int = 256,
        projection_dim: int = 128,
        corruption: float = 0.3,
        learning_rate: float = 1e-3,
    ) -> Any:
        """Learn from rows without labels; the next ``fit`` starts from what it learns.

        Fits the column roles and preprocessors on ``X`` and trains each
        modality's encoder, a linear projection to ``projection_dim`` and the
        fusion with :class:`~widemm.training.contrastive.Contrasting`: the
        projections of a row's table, texts and images are pulled together,
        other rows' pushed apart (CLIP); and so are two views of the row after
        the fusion, each with its table's values replaced by other rows' at
        rate ``corruption`` (SCARF) and each text or image dropped at that rate.
        A table alone has the views' term only. Frozen backbones are encoded
        once (the feature cache), so only the projections, the fusion and
        trainable parts learn. ``fit`` then reuses these preprocessors and
        weights (its rows need the same columns) and trains everything on the
        labels, the heads from scratch; a later ``fit`` starts afresh.
        ``pretrain_history_`` has the loss per epoch.
        """
        self.pretrain_history_ = pd.DataFrame(
            pretrain(
                self,  # type: ignore[arg-type]
                X,
                epochs=epochs,
                batch_size=batch_size,
                projection_dim=projection_dim,
                corruption=corruption,
                learning_rate=learning_rate,
            )
        )
        return self

    def embed(self, X: pd.DataFrame, column: Any = None) -> np.ndarray:
        """Each row's fused embedding (n_rows, fusion output), or one column's.

        ``column`` names a text or image column (its encoder's embedding,
        projected after ``pretrain``) or a tabular one (the table's). After
        ``pretrain`` (and before ``fit``) the embeddings are the pretrained ones:
        a row's text and image embeddings are aligned, and cosine similarity
        between them retrieves one from the other.
        """
        model = getattr(self, "model_", None)
        if model is None and hasattr(self, "pretrained_"):  # pretrained, not fitted
            model = self.pipeline_.build_model({})  # type: ignore[attr-defined]
            model.load_state_dict(_pretrained_parts(self.pretrained_), strict=False)
        if model is None:
            from sklearn.exceptions import NotFittedError

            raise NotFittedError("embed needs a model: call pretrain or fit first.")
        return embed(self, model, X, column)  # type: ignore[arg-type]

    def _fit_pipeline(self, X: pd.DataFrame, params: dict[str, Any]) -> FeaturePipeline:
        """Return the pretrained pipeline when ``pretrain`` ran, else fit one on X."""
        if not hasattr(self, "pretrained_"):
            self.__dict__.pop("pretrain_history_", None)  # an earlier, used-up start
            names = FeaturePipeline._get_param_names()
            return FeaturePipeline(**{k: params[k] for k in names}).fit(X)
        pipeline: FeaturePipeline = self.pipeline_  # type: ignore[attr-defined]
        missing = [c for c in pipeline.schema_.deep_cols if c not in X.columns]
        if missing:
            raise ValueError(
                f"fit after pretrain needs the pretraining's columns; X lacks "
                f"{missing}."
            )
        return pipeline

    def _start_from_pretrained(self, model: WideDeep) -> None:
        """Load the pretrained encoders, projections and fusion into ``model``, once."""
        state = self.__dict__.pop("pretrained_", None)
        if state is not None:
            model.load_state_dict(_pretrained_parts(state), strict=False)


def _pretrained_parts(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Return the encoders', projections' and fusion's weights of a model's state."""
    return {
        k: v
        for k, v in state.items()
        if k.startswith(("encoders.", "projections.", "fusion."))
    }
