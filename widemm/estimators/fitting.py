"""One fit's candidates: a model trained from a start, and the better of two starts.

``BaseWideDeep.fit`` reads the rows and plans the run (its identity, seed, resumption:
``rows.read_rows``); these train a model on them, from scratch or from a ``Pretrained``
start, and keep the pretrained start only when it validates better than a fresh one.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from widemm.data import FrameDataset
from widemm.estimators.params import pipeline_parameters
from widemm.estimators.pretraining import Pretrained
from widemm.estimators.rows import Estimator, Plan, Rows, last_rows
from widemm.execution import log_line, seeded
from widemm.models import WideDeep
from widemm.pipeline import FeaturePipeline
from widemm.targets import Labels, Outputs, Target
from widemm.training import Trainer, auto_schedule
from widemm.training.checkpoint import plan_run
from widemm.training.shrinkage import shrink_heads


@dataclass
class Trained:
    """One trained candidate of a fit: what it built, how it trained, its score."""

    pipeline: FeaturePipeline
    model: WideDeep
    trainer: Trainer
    history: list[dict[str, float]]
    valid: FrameDataset | None
    valid_loss: float | None
    pool: np.ndarray  # positions of rows for the explanations' background
    outputs: np.ndarray  # the model's logits on them
    batch_size: int
    max_epochs: int
    shares: dict[str, float]  # each target column's share of its head's output


def train(
    estimator: Estimator,
    rows: Rows,
    start: Pretrained | None,
    plan: Plan,
    checkpoint_dir: str | os.PathLike[str] | None,
    trees: bool | None = None,
) -> Trained:
    """Build a model (from ``start``, or afresh on the rows) and train it.

    ``trees`` overrides the estimator's ``trees``.
    """
    X, stream = rows.X, rows.stream
    widths = {t.name: t.n_outputs for t in estimator.targets_}
    codes = estimator._encode(rows.y)
    seed = plan.seed
    with seeded(seed):
        if start is None:
            params = pipeline_parameters(estimator.get_params(deep=False))
            pipeline = FeaturePipeline(
                **params | ({} if trees is None else {"trees": trees})
            )
            if stream is None:  # the trees fit on the targets
                heads = [t.head() for t in estimator.targets_]
                pipeline.fit(X, codes.numpy(), heads=heads, sample_weight=rows.weight)
            else:  # a stream's sample: its trees would score its rows in-fold
                pipeline.fit(X)
            model = pipeline.build_model(widths)
        else:
            missing = [c for c in start.pipeline.schema_.deep_cols if c not in X]
            if missing:
                raise ValueError(
                    "fit from a pretrained start needs the pretraining's "
                    f"columns; X lacks {missing}."
                )
            pipeline, model = start.start(widths)
        # a stream's batches are made with the estimator's pipeline and model
        estimator.pipeline_, estimator.model_ = pipeline, model
        weights = None if rows.weight is None else torch.from_numpy(rows.weight)
        inputs = pipeline.inputs(X, model, out_of_fold=True)
        data = FrameDataset(inputs, codes, weights)
        stratify = len(estimator.targets_) == 1 and isinstance(
            estimator.targets_[0], Labels
        )
        if rows.eval_set is None:
            last = last_rows(estimator, pipeline, X)
            train, valid, held = data.split(
                estimator.validation_fraction, seed, stratify, last
            )
        else:  # every row trains: validation_fraction is ignored
            train, valid = data, estimator._dataset(*rows.eval_set)
            held = np.zeros(0, dtype=np.int64)
        n_train = len(train) if stream is None else stream.n_rows - len(held)
        batch_size, max_epochs = auto_schedule(
            estimator.batch_size, estimator.max_epochs, n_train
        )
        if stream is not None:  # train on the stream, minus the validation rows
            stream.skip = X.index.to_numpy()[held]
        else:
            train.inputs = pipeline.training_inputs(train.inputs, model)
        config = estimator._config(
            objective=estimator._objective(),
            batch_size=batch_size,
            max_epochs=max_epochs,
            random_state=seed,
            checkpoint_dir=checkpoint_dir,
        )
        trainer = Trainer(config, estimator.callbacks or (), run=plan.run)
        history = trainer.fit(model, stream or train, valid, plan.state)
        shares = {}
        if codes.reshape(len(codes), -1).shape[1] > 1 and valid is not None:
            shares = shrink_heads(model, trainer, valid)
        pool = torch.randperm(len(X))[:2000]  # for explanations' background
        outputs = trainer.predict(model, data.subset(pool), batch_size)
    loss = None if valid is None else trainer.evaluate(model, valid)["valid_loss"]
    return Trained(
        pipeline,
        model,
        trainer,
        history,
        valid,
        loss,
        pool.numpy(),
        outputs,
        batch_size,
        max_epochs,
        shares,
    )


def train_from_start(
    estimator: Estimator, rows: Rows, plan: Plan
) -> tuple[Trained, dict[str, Any]]:
    """Train from the estimator's ``pretrained`` start, or afresh without one.

    From a pretrained start, also train afresh (as ``fit`` alone would) and keep
    what validates better. Returns the model kept and what was compared (the
    estimator's ``start_``). The fresh model checkpoints in
    ``checkpoint_dir/fresh``. Warns when the pretrained start loses, or cannot
    be compared (no validation rows).
    """
    start = estimator.pretrained
    if start is None:
        return _fresh(estimator, rows, plan, estimator.checkpoint_dir)
    trained = train(estimator, rows, start, plan, estimator.checkpoint_dir)
    return _keep_better(estimator, trained, rows, plan)


def _fresh(
    estimator: Estimator,
    rows: Rows,
    plan: Plan,
    folder: str | os.PathLike[str] | None,
) -> tuple[Trained, dict[str, Any]]:
    """Train as ``fit`` alone does: with the trees as ``trees`` says.

    ``trees="auto"`` on a table with text or image columns also trains without
    the trees (checkpoints in ``<folder>/no_trees``) and keeps what validates
    better: there, trees over the tabular columns alone can help (movies' Meter
    R² 0.234 -> 0.320) or hurt (emoji accuracy 0.892 -> 0.876). Without tabular
    inputs the trees read only the text columns' linear models, and no table
    measured was better without them (ROC AUC 0.879 against 0.838 on the fine
    foods' reviews, seeds 0-5; 0.955 against 0.945 on the clothing reviews'
    texts, seeds 0-1): nothing to choose. Chosen on the validation rows, whose
    linear scores are out of fold, the fine foods kept the worse on 1 seed of 6.
    """
    trained = train(estimator, rows, None, plan, folder)
    out: dict[str, Any] = {"kept": "fresh"}
    if trained.valid_loss is None:
        return trained, out
    out["valid_loss_fresh"] = trained.valid_loss
    schema = trained.pipeline.schema_
    if (
        estimator.trees != "auto"
        or "trees" not in trained.pipeline.preprocessors_
        or not trained.pipeline.preprocessors_["trees"].n_features_
        or not (schema.text_cols or schema.image_cols)
    ):
        return trained, out
    sub = None if folder is None else Path(folder) / "no_trees"
    settings = {**plan.settings, "trees": False}
    plain_plan = Plan(*plan_run(sub, settings, plan.ids), settings, plan.ids)
    plain = train(estimator, rows, None, plain_plan, sub, trees=False)
    assert plain.valid_loss is not None  # the same validation rows
    kept = plain if plain.valid_loss < trained.valid_loss else trained
    out |= {
        "trees": kept is trained,
        "valid_loss_fresh": kept.valid_loss,
        "valid_loss_with_trees": trained.valid_loss,
        "valid_loss_without_trees": plain.valid_loss,
    }
    log_line(
        "kept the model %s the trees: validation loss %.4g with, %.4g without",
        "with" if kept is trained else "without",
        trained.valid_loss,
        plain.valid_loss,
        verbose=estimator.verbose,
    )
    return kept, out


def _keep_better(
    estimator: Estimator, pretrained: Trained, rows: Rows, plan: Plan
) -> tuple[Trained, dict[str, Any]]:
    if pretrained.valid_loss is None:
        warnings.warn(
            "fit from a pretrained start has no validation rows to check it "
            "against a fresh start: kept it unchecked. Set "
            "validation_fraction > 0 or pass eval_set.",
            UserWarning,
            stacklevel=4,
        )
        return pretrained, {"kept": "pretrained"}
    folder = estimator.checkpoint_dir
    folder = None if folder is None else Path(folder) / "fresh"
    settings = {**plan.settings, "pretrained": None}
    fresh_plan = Plan(*plan_run(folder, settings, plan.ids), settings, plan.ids)
    fresh, start = _fresh(estimator, rows, fresh_plan, folder)
    assert fresh.valid_loss is not None  # the same validation rows
    better = fresh if fresh.valid_loss < pretrained.valid_loss else pretrained
    start |= {
        "kept": "fresh" if better is fresh else "pretrained",
        "valid_loss_pretrained": pretrained.valid_loss,
    }
    if better is fresh:
        warnings.warn(
            f"The pretrained start validated worse than a fresh one (validation "
            f"loss {pretrained.valid_loss:.4g} against {fresh.valid_loss:.4g}): "
            "kept the fresh model. start_ has both.",
            UserWarning,
            stacklevel=4,
        )
    else:
        log_line(
            "kept the pretrained start: validation loss %.4g against %.4g fresh",
            pretrained.valid_loss,
            fresh.valid_loss,
            verbose=estimator.verbose,
        )
    return better, start


def calibrate(targets: Sequence[Target], trained: Trained) -> None:
    """Calibrate each target on the validation rows (see its ``calibrate``)."""
    if trained.valid is None:
        raise ValueError(
            "calibrate=True needs validation rows: set validation_fraction > 0 "
            "or pass eval_set."
        )
    logits = trained.trainer.predict(trained.model, trained.valid)
    codes = trained.valid.inputs["target"].numpy()
    outputs = Outputs(targets)
    pairs = zip(outputs.blocks(logits), outputs.code_blocks(codes), strict=True)
    for t, (block, y) in zip(targets, pairs, strict=True):
        t.calibrate(block, y)
