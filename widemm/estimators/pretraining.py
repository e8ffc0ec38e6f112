"""Contrastive pretraining on unlabeled rows, and row embeddings."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import torch
from sklearn.utils import check_random_state

from widemm.data import FrameDataset, to_device
from widemm.pipeline import FeaturePipeline
from widemm.runtime import progress, resolve_device, seeded
from widemm.training.contrastive import ContrastiveLoss, corrupt
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
    (``pretrained_``) that its next ``fit`` starts from.
    """
    X = check_frame(estimator, X, reset=True)
    params = estimator.get_params(deep=False)
    seed = int(check_random_state(estimator.random_state).randint(2**31 - 1))
    device = resolve_device(estimator.device)
    with seeded(seed):
        pipeline = FeaturePipeline(
            **{k: params[k] for k in FeaturePipeline._get_param_names()}
        ).fit(X)
        pipeline.projection_dim_ = projection_dim
        model = pipeline.build_model({}).to(device)
        data = FrameDataset(pipeline.inputs(X, model))
        contrast = ContrastiveLoss().to(device)
        trainable = [p for p in model.parameters() if p.requires_grad]
        optimizer = torch.optim.AdamW(
            [*trainable, *contrast.parameters()], lr=learning_rate
        )
        loader = data.loader(min(batch_size, len(data)), seed)
        generator = torch.Generator().manual_seed(seed)
        history = []
        model.train()
        for epoch in progress(
            range(epochs), verbose=estimator.verbose > 0, desc="pretraining"
        ):
            loader.set_epoch(epoch)
            start, total, n = time.perf_counter(), 0.0, 0
            for batch in loader:
                batch = to_device(batch, device)
                loss, rows = _loss(model, contrast, batch, corruption, generator)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                total, n = total + float(loss.detach()) * rows, n + rows
            history.append({
                "epoch": epoch + 1,
                "contrastive_loss": total / max(n, 1),
                "temperature": float(1 / contrast.logit_scale.detach().exp()),
                "seconds": time.perf_counter() - start,
            })  # fmt: skip
    estimator.pipeline_ = pipeline
    estimator.pretrained_ = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    return history


def _loss(
    model: WideDeep,
    contrast: ContrastiveLoss,
    batch: dict[str, Any],
    corruption: float,
    generator: torch.Generator,
) -> tuple[torch.Tensor, int]:
    """Contrast the batch's modalities (a table alone: with a corrupted copy).

    Returns the loss and the batch's rows.
    """
    embeddings, present = model.embed(batch)
    embeddings = {k: _pooled(e) for k, e in embeddings.items()}
    rows = len(next(iter(embeddings.values())))
    if len(embeddings) > 1:
        return contrast(embeddings, present), rows
    slot, tab = next(iter(embeddings.items()))
    noisy = {
        **batch,
        slot: {k: corrupt(v, corruption, generator) for k, v in batch[slot].items()},
    }
    view, _ = model.embed(noisy)
    return contrast({"a": tab, "b": _pooled(view[slot])}, {}), rows


def _pooled(e: torch.Tensor) -> torch.Tensor:
    """Average an ensemble's (B, k, d) members; keep (B, d) as it is."""
    return e.mean(1) if e.dim() == 3 else e


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
                out.append(_pooled(model.embed(batch)[0][slot]).float().cpu())
            else:
                out.append(_pooled(model.fused(batch)).float().cpu())
    return torch.cat(out).numpy()


def _slot(pipeline: FeaturePipeline, column: Any) -> str:
    schema = pipeline.schema_
    slots = {c: s for s, c in {**schema.text_slots, **schema.image_slots}.items()}
    if column in slots:
        return slots[column]
    if column in schema.tab_cols:
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
        modality's encoder and a linear projection to ``projection_dim`` with
        :class:`~widemm.training.contrastive.ContrastiveLoss`: the projections
        of a row's table, texts and images are pulled together, other rows'
        pushed apart. A table alone is contrasted with a copy of each row whose
        values are replaced by other rows' at rate ``corruption`` (SCARF).
        Frozen backbones are encoded once (the feature cache), so only the
        projections and trainable parts learn. ``fit`` then reuses these
        preprocessors and weights (its rows need the same columns) and trains
        everything on the labels; a later ``fit`` starts afresh.
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
            model.load_state_dict(_encoders_of(self.pretrained_), strict=False)
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
        """Load the pretrained encoders and projections into ``model`` (once)."""
        state = self.__dict__.pop("pretrained_", None)
        if state is not None:
            model.load_state_dict(_encoders_of(state), strict=False)


def _encoders_of(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Return the encoders' and projections' weights of a model's state."""
    return {
        k: v for k, v in state.items() if k.startswith(("encoders.", "projections."))
    }
