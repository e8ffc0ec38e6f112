"""Contrastive pretraining on unlabeled rows (``Pretrained``), and row embeddings.

What ``pretrain`` learns is a fitted object, :class:`Pretrained`, that an
estimator holds in its ``pretrained`` parameter, as scikit-learn's gradient
boosting holds its ``init`` estimator: ``clone``, ``GridSearchCV`` and
``cross_val_score`` keep it, and every ``fit`` of such an estimator starts from it.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from itertools import combinations
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from widemm.data import FrameDataset, to_device
from widemm.estimators.params import pipeline_parameters, run_settings
from widemm.execution import seeded
from widemm.models import WideDeep
from widemm.pipeline import FeaturePipeline
from widemm.training import Callback, TrainConfig, Trainer
from widemm.training.checkpoint import frame_digest, plan_run
from widemm.training.contrastive import Contrasting, pooled

PARTS = ("encoders.", "projections.", "fusion.")  # what a pretrained start loads


@dataclass(frozen=True, eq=False)
class Pretrained:
    """What ``pretrain`` learned from unlabeled rows; ``fit`` starts from it.

    Immutable: copies (``clone``) share it, and a ``fit`` starting from it
    trains a copy of its pipeline and weights.

    Attributes
    ----------
    pipeline : FeaturePipeline
        Column roles and preprocessors fitted on the unlabeled rows (with their
        ``projection_dim_``).
    weights : dict of str to Tensor
        The trained encoders', projections' and fusion's weights.
    history : DataFrame
        Per epoch: ``contrastive_loss``, ``temperature``, ``lr``, ``seconds``.
    digest : str
        Identifies this pretraining (its data, settings and weights) in a run's
        fingerprint, so a checkpoint of another start is not resumed.
    """

    pipeline: FeaturePipeline
    weights: Mapping[str, torch.Tensor]
    history: pd.DataFrame
    digest: str

    def __deepcopy__(self, memo: dict[int, Any]) -> Pretrained:
        return self  # immutable: clone shares it rather than copying the weights

    def __repr__(self) -> str:
        return (
            f"Pretrained(rows={self.pipeline.n_rows_}, epochs={len(self.history)}, "
            f"digest={self.digest[:12]!r})"
        )

    def start(self, heads: Mapping[str, int]) -> tuple[FeaturePipeline, WideDeep]:
        """Return a copy of the pipeline and a model with ``heads`` on these weights.

        The copy shares the pipeline's feature cache: its frozen encoders are
        the pretraining's, so their cached outputs stay valid.
        """
        pipeline = self.pipeline.copy()
        model = pipeline.build_model(heads)
        model.load_state_dict(dict(self.weights), strict=False)
        return pipeline, model


def pretrain(
    X: pd.DataFrame,
    params: dict[str, Any],
    config: TrainConfig,
    *,
    epochs: int,
    batch_size: int,
    projection_dim: int,
    corruption: float,
) -> Pretrained:
    """Fit an estimator's pipeline on ``X`` and train its encoders without labels.

    Each modality's encoder, a linear projection to ``projection_dim`` and the
    fusion learn with :class:`~widemm.training.contrastive.Contrasting`: the
    projections of a row's table, texts and images are pulled together, other
    rows' pushed apart (CLIP); and so are two views of the row after the
    fusion, each with its table's values replaced by other rows' at rate
    ``corruption`` (SCARF) and each text or image dropped at that rate. A table
    alone has the views' term only. Frozen backbones are encoded once (the
    feature cache), so only the projections, the fusion and trainable parts
    learn.

    ``params`` are the estimator's parameters (``get_params``): its pipeline's,
    its ``callbacks`` and those that identify its runs. ``config`` is its
    Trainer's (device, precision, ``checkpoint_dir``, ...) with a
    ``ContrastiveObjective``, ``epochs`` and the learning rate; its rows per
    step are at most ``batch_size``. The ``Trainer`` runs it (see
    ``widemm.training.contrastive.Contrasting``): under ``torchrun`` each rank
    takes its share of every batch; with a ``checkpoint_dir`` the run writes
    ``<checkpoint_dir>/pretrain/last.pt`` after every epoch and resumes from it;
    ``callbacks`` and the log see its epochs.
    """
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
    options = dict(
        epochs=epochs,
        batch_size=batch_size,
        projection_dim=projection_dim,
        corruption=corruption,
        learning_rate=config.learning_rate,
    )
    folder = config.checkpoint_dir
    folder = None if folder is None else Path(folder) / "pretrain"
    data_id = frame_digest(X)
    settings = {**run_settings(params), "pretrained": None, "pretrain": repr(options)}
    run, seed, state = plan_run(folder, settings, {"data": data_id})
    callbacks = list(params["callbacks"] or ())
    with seeded(seed):
        pipeline = FeaturePipeline(**pipeline_parameters(params))
        pipeline = pipeline.fit(X, projection_dim=projection_dim)
        model = pipeline.build_model({})
        data = FrameDataset(pipeline.inputs(X, model), torch.zeros(len(X), 1))
        _check_pairs(model, data)
        contrasting = Contrasting(model, corruption)
        config = dataclasses.replace(
            config,
            batch_size=min(batch_size, len(data)),
            random_state=seed,
            checkpoint_dir=folder,
        )
        trainer = Trainer(config, [*callbacks, _Temperature()], run=run)
        history = trainer.fit(contrasting, data, None, state)
    model.cpu()
    weights = {
        k: v.detach().clone()
        for k, v in model.state_dict().items()
        if k.startswith(PARTS)
    }
    digest = hashlib.blake2b(repr((run, history)).encode(), digest_size=16)
    rows = [
        {("contrastive_loss" if k == "train_loss" else k): v for k, v in row.items()}
        for row in history
    ]
    return Pretrained(pipeline, weights, pd.DataFrame(rows), digest.hexdigest())


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
    pipeline: FeaturePipeline, model: WideDeep, X: pd.DataFrame, column: Any = None
) -> np.ndarray:
    """Return each row's fused embedding, or one input column's embedding.

    ``X`` is checked against the fit columns already. ``column``: an input
    column (text or image: its slot's embedding; a tabular column: the whole
    table's). Embeddings are the projected ones when the model was pretrained.
    """
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
