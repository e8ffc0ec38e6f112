"""The estimators' shared machinery: columns -> pipeline -> model -> Trainer."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from functools import partial
from pathlib import Path
from typing import Any, Literal, Self

import numpy as np
import pandas as pd
import torch
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

from widemm import persistence
from widemm.data import FrameDataset
from widemm.estimators.outputs import explained
from widemm.estimators.pretraining import Pretraining
from widemm.models import Encoder, Fusion
from widemm.pipeline import pipeline_classes
from widemm.runtime import seeded
from widemm.schema import ColumnSchema
from widemm.streaming import ParquetStream
from widemm.targets import Labels, Target, blocks, target_classes
from widemm.training import TrainConfig, Trainer, auto_schedule
from widemm.training.callbacks import Callback
from widemm.training.checkpoint import frame_digest, plan_run
from widemm.training.objective import Objective, Weighting
from widemm.validation import check_frame, check_sample_weight, check_target

# Settings that change neither the model nor the data order: not the run's identity.
# (Calibration happens after training: a run resumes whatever its value.)
_NOT_RUN = (
    "verbose",
    "device",
    "num_workers",
    "callbacks",
    "checkpoint_dir",
    "calibrate",
)
_TASK_OPTIONS = {  # option: (default, the estimators it applies to)
    "class_weight": (None, "WideDeepClassifier and WideDeepMultiTask"),
    "focal_gamma": (None, "WideDeepClassifier and WideDeepMultiTask"),
    "calibrate": (False, "all estimators (regressors: with quantiles)"),
    "quantiles": (None, "WideDeepRegressor and WideDeepMultiTask"),
    "tasks": (None, "WideDeepMultiTask"),
    "task_weighting": ("fixed", "WideDeepMultiTask"),
}
_TRAINING = (
    "learning_rate",
    "weight_decay",
    "lr_scheduler",
    "n_iter_no_change",
    "verbose",
    "device",
    "num_workers",
    "checkpoint_dir",
)


class BaseWideDeep(Pretraining, BaseEstimator):
    """Shared machinery of WideDeepClassifier, WideDeepRegressor and WideDeepMultiTask.

    Parameters
    ----------
    tab_model, tab_params, text_model, text_params, text_max_length, image_model,
    image_params, image_root, image_size, image_augment, on_error, cache_features,
    share_encoders, fusion, fusion_params, wide, cat_cols, cont_cols, date_cols,
    multi_cols, text_cols, image_cols, ignore_cols, wide_cols, crossed_cols,
    scaling, min_frequency, max_categories
        How columns become model inputs and which network they feed: see
        :class:`widemm.pipeline.FeaturePipeline`, which documents each.
    max_epochs, batch_size : int or "auto"
        Training length and rows per step; ``"auto"`` adapts both to the number
        of training rows (``widemm.training.auto_schedule``: 256 rows and 20
        epochs from 10,000 rows on, smaller batches and more epochs below). The
        values used are ``max_epochs_`` and ``batch_size_``.
    learning_rate, weight_decay, lr_scheduler, n_iter_no_change, verbose, device,
    num_workers
        Passed to the Trainer: see :class:`widemm.training.TrainConfig`.
    validation_fraction : float
        Share of the training rows held out for early stopping (stratified for
        classifiers); ignored when ``fit`` gets an ``eval_set``. 0 disables it.
    random_state : int, RandomState or None
        Fixes model initialisation, the validation split, shuffling and dropout.
    trainer_params : dict, optional
        More :class:`widemm.training.TrainConfig` settings: ``precision``
        ("bf16", "fp16"), ``accumulate_grad_batches``, ``clip_grad_norm``,
        ``warmup_fraction``, ``activation_checkpointing``, ``strategy``.
    callbacks : list of Callback, optional
        Extra training callbacks (``widemm.training.callbacks``): loggers,
        ``UnfreezeBackbones``, your own.
    checkpoint_dir : str, optional
        Save the training state there after every epoch. ``fit`` run again with
        the same settings and data resumes from it (a finished run trains no
        more); with other settings or data it warns, naming what changed, and
        starts fresh. ``random_state=None`` resumes with the checkpoint's seed.
    stream_sample_rows, stream_chunk_rows : int
        When ``fit`` reads a parquet path: rows sampled to fit the preprocessors,
        and rows read (and held in memory) at a time.
    class_weight : "balanced", dict or None
        Classifiers: weight of each class in the loss (``"balanced"``: inverse
        class frequency); multiplies ``sample_weight``.
    focal_gamma : float, optional
        Classifiers: focal loss with this gamma instead of cross-entropy.
    calibrate : bool
        After training, calibrate on the validation rows: classifiers fit a
        temperature (temperature scaling; the ranking of classes is unchanged),
        regressors with ``quantiles`` shift each quantile so that its share of
        validation rows below it is its level (split-conformal), for intervals
        that cover what they claim. Needs validation rows.
    quantiles : sequence of float, optional
        Regressors: predict these quantiles (e.g. ``(0.05, 0.5, 0.95)``, which
        must include 0.5) with pinball loss; ``predict`` gives the median and
        ``predict_quantiles`` all of them, for prediction intervals.
    tasks : dict, optional
        ``WideDeepMultiTask``: the task of each target column.
    task_weighting : {"fixed", "uncertainty"}
        ``WideDeepMultiTask``: how the tasks' losses are weighed.
    """

    _options: tuple[str, ...] = ()  # of the task options above, the ones that apply
    _fitted: tuple[str, ...] = (  # what saving writes (besides model_'s weights)
        *("pipeline_", "schema_", "history_", "targets_", "batch_size_"),
        *("max_epochs_", "n_features_in_", "feature_names_in_", "target_names_"),
        "pretrain_history_",
    )
    targets_: list[Target]

    def __init__(
        self,
        *,
        tab_model: str | Callable[..., Encoder] = "auto",
        tab_params: Mapping[str, Any] | None = None,
        text_model: str | Callable[..., Encoder] = "bag",
        text_params: Mapping[str, Any] | None = None,
        text_max_length: int | None = None,
        image_model: str | Callable[..., Encoder] = "small_cnn",
        image_params: Mapping[str, Any] | None = None,
        image_root: str | None = None,
        image_size: int = 224,
        image_augment: bool = False,
        on_error: Literal["raise", "mask"] = "raise",
        cache_features: bool = True,
        num_workers: int = 0,
        share_encoders: bool = False,
        fusion: str | Callable[..., Fusion] = "concat",
        fusion_params: Mapping[str, Any] | None = None,
        wide: bool = True,
        cat_cols: Sequence[str] | None = None,
        cont_cols: Sequence[str] | None = None,
        date_cols: Sequence[str] | None = None,
        multi_cols: Sequence[str] | None = None,
        text_cols: Sequence[str] | None = None,
        image_cols: Sequence[str] | None = None,
        ignore_cols: Sequence[str] | None = None,
        wide_cols: Sequence[str] | None = None,
        crossed_cols: Sequence[Sequence[str]] | None = None,
        scaling: Literal["standard", "quantile"] | None = "standard",
        min_frequency: int = 5,
        max_categories: int = 10_000,
        max_epochs: int | Literal["auto"] = "auto",
        batch_size: int | Literal["auto"] = "auto",
        learning_rate: float = 1e-3,
        weight_decay: float = 1e-5,
        lr_scheduler: Literal["onecycle", "cosine"] | None = None,
        validation_fraction: float = 0.1,
        n_iter_no_change: int | None = 5,
        random_state: int | np.random.RandomState | None = None,
        verbose: int = 0,
        device: str = "auto",
        trainer_params: Mapping[str, Any] | None = None,
        callbacks: Sequence[Callback] | None = None,
        checkpoint_dir: str | os.PathLike[str] | None = None,
        stream_sample_rows: int = 100_000,
        stream_chunk_rows: int = 65_536,
        class_weight: str | Mapping[Any, float] | None = None,
        focal_gamma: float | None = None,
        calibrate: bool = False,
        quantiles: Sequence[float] | None = None,
        tasks: Mapping[str, Any] | None = None,
        task_weighting: Weighting = "fixed",
    ) -> None:
        self.tab_model = tab_model
        self.tab_params = tab_params
        self.text_model = text_model
        self.text_params = text_params
        self.text_max_length = text_max_length
        self.image_model = image_model
        self.image_params = image_params
        self.image_root = image_root
        self.image_size = image_size
        self.image_augment = image_augment
        self.on_error = on_error
        self.cache_features = cache_features
        self.num_workers = num_workers
        self.share_encoders = share_encoders
        self.fusion = fusion
        self.fusion_params = fusion_params
        self.wide = wide
        self.cat_cols = cat_cols
        self.cont_cols = cont_cols
        self.date_cols = date_cols
        self.multi_cols = multi_cols
        self.text_cols = text_cols
        self.image_cols = image_cols
        self.ignore_cols = ignore_cols
        self.wide_cols = wide_cols
        self.crossed_cols = crossed_cols
        self.scaling = scaling
        self.min_frequency = min_frequency
        self.max_categories = max_categories
        self.max_epochs = max_epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
        self.lr_scheduler = lr_scheduler
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.random_state = random_state
        self.verbose = verbose
        self.device = device
        self.trainer_params = trainer_params
        self.callbacks = callbacks
        self.checkpoint_dir = checkpoint_dir
        self.stream_sample_rows = stream_sample_rows
        self.stream_chunk_rows = stream_chunk_rows
        self.class_weight = class_weight
        self.focal_gamma = focal_gamma
        self.calibrate = calibrate
        self.quantiles = quantiles
        self.tasks = tasks
        self.task_weighting = task_weighting

    def fit(
        self,
        X: Any,
        y: Any,
        eval_set: tuple[Any, Any] | None = None,
        sample_weight: Any = None,
    ) -> Self:
        """Infer column roles, fit the preprocessors, build and train the model.

        Parameters
        ----------
        X : DataFrame, array-like of shape (n_rows, n_columns), or path
            Training inputs (arrays get column names ``x0 .. xN``), or a parquet
            file or folder, streamed in chunks (see ``stream_sample_rows``).
        y : array-like or str
            Target(s); with a path, the name of the target column (or a list of
            names for ``WideDeepMultiTask``).
        eval_set : tuple (X_valid, y_valid), optional
            Validation data for early stopping, instead of ``validation_fraction``.
        sample_weight : array-like of shape (n_rows,), or str, optional
            Each row's weight in the loss (0 drops the row; 2 counts it twice);
            with a path, the name of the weight column.
        """
        self._check_options()
        stream = weight = None
        if isinstance(X, str | os.PathLike):
            stream = ParquetStream.open(X, y, self.stream_chunk_rows, sample_weight)
            names = y
            ids = {
                "data": stream.identity(),
                "target": repr(y),
                "weight": repr(sample_weight),
            }
        else:
            X = check_frame(self, X, reset=True)
            y = self._check_y(y, X)
            weight = check_sample_weight(sample_weight, X)
            ids = {
                "data": frame_digest(X),
                "target": frame_digest(pd.DataFrame(y)),
                "weight": frame_digest(pd.Series(weight)),
            }
        if hasattr(self, "pretrained_"):  # another start: another run
            ids["pretrained"] = repr(self.pretrain_history_.to_numpy().tolist())
        # Before any random draw: nothing downstream decides the seed again.
        params = self.get_params(deep=False)
        run, seed, state = plan_run(self.checkpoint_dir, self._run_settings(), ids)
        if stream is not None:
            sample = stream.sample(self.stream_sample_rows, seed)
            X = check_frame(
                self, sample.drop(columns=_names(names, sample_weight)), reset=True
            )
            weights = None if sample_weight is None else sample[sample_weight]
            weight = check_sample_weight(weights, X)
            y = self._check_y(sample[names], X)
        if weight is not None and not weight.all():  # 0 weighs as a dropped row
            keep = weight > 0
            X, y, weight = X[keep], y[keep], weight[keep]
        if len(X) < 2:
            raise ValueError(f"X has {len(X)} sample; fitting needs at least 2 rows.")
        self.targets_ = self._fit_targets(y, weight)
        objective = self._objective()
        with seeded(seed):
            self.pipeline_ = pipeline = self._fit_pipeline(X, params)
            self.schema_: ColumnSchema = pipeline.schema_
            heads = {t.name: t.n_outputs for t in self.targets_}
            self.model_ = pipeline.build_model(heads)
            self._start_from_pretrained(self.model_)
            weights = None if weight is None else torch.from_numpy(weight)
            data = FrameDataset(
                pipeline.inputs(X, self.model_), self._encode(y), weights
            )
            stratify = len(self.targets_) == 1 and isinstance(self.targets_[0], Labels)
            train, valid, held = data.split(self.validation_fraction, seed, stratify)
            if eval_set is not None:
                valid = self._dataset(*eval_set)
            n_train = len(train) if stream is None else stream.n_rows - len(held)
            self.batch_size_, self.max_epochs_ = auto_schedule(
                self.batch_size, self.max_epochs, n_train
            )
            if stream is not None:  # train on the stream, minus the validation rows
                stream.skip = X.index.to_numpy()[held]
                stream.transform = partial(
                    self._train_batch, target=names, weight=sample_weight
                )
            else:
                train.inputs = pipeline.training_inputs(train.inputs, self.model_)
            trainer = Trainer(
                self._config(seed, objective), self.callbacks or (), run=run
            )
            history = trainer.fit(self.model_, stream or train, valid, state)
            pool = torch.randperm(len(X))[:2000]  # for explanations' background
            outputs = trainer.predict(self.model_, data.subset(pool), self.batch_size_)
            if self.calibrate:
                self._calibrate(trainer, valid)
        self.history_ = pd.DataFrame(history)
        self.pipeline_.keep_background(X.iloc[pool.numpy()], outputs)
        self.model_.cpu()
        return self

    def _check_options(self) -> None:
        """Refuse a task option this estimator does not use (see ``_options``)."""
        for key, (default, users) in _TASK_OPTIONS.items():
            if key not in self._options and getattr(self, key) != default:
                raise ValueError(
                    f"{key}= does not apply to {type(self).__name__}; it applies to "
                    f"{users}."
                )

    def _objective(self) -> Objective:
        return Objective([t.head() for t in self.targets_], self.task_weighting)

    def _calibrate(self, trainer: Trainer, valid: FrameDataset | None) -> None:
        """Calibrate each target on the validation rows (see its ``calibrate``)."""
        if valid is None:
            raise ValueError(
                "calibrate=True needs validation rows: set validation_fraction > 0 "
                "or pass eval_set."
            )
        logits = trainer.predict(self.model_, valid)
        target = valid.inputs["target"].numpy()
        for t, block, y in zip(
            self.targets_, *blocks(self.targets_, logits, target), strict=True
        ):
            t.calibrate(block, y)

    def _frame(self, X: Any) -> pd.DataFrame:
        """X checked against the fit columns; those the model ignores may be absent."""
        return check_frame(self, X, reset=False, optional=self.schema_.ignored)

    def _encode(self, y: Any) -> torch.Tensor:
        """Encode y: the targets' columns side by side, float32 (NaN where unknown)."""
        parts = [
            t.encode(part)
            for t, part in zip(self.targets_, self._parts(y), strict=True)
        ]
        return torch.from_numpy(np.concatenate(parts, axis=1))

    def _dataset(self, X: Any, y: Any = None) -> FrameDataset:
        """Model inputs of rows X (checked against the fit columns), and y's codes."""
        X = self._frame(X)
        target = None if y is None else self._encode(self._check_y(y, X))
        return FrameDataset(self.pipeline_.inputs(X, self.model_), target)

    def _train_batch(
        self, frame: pd.DataFrame, target: Any, weight: str | None
    ) -> dict[str, Any]:
        """Turn a chunk of a stream into training inputs, target and weights."""
        X = frame.drop(columns=_names(target, weight))
        data = self._dataset(X, frame[target])
        if weight is not None:
            data.inputs["weight"] = torch.from_numpy(
                check_sample_weight(frame[weight], X)
            )
        return self.pipeline_.training_inputs(data.inputs, self.model_)

    def _run_settings(self) -> dict[str, Any]:
        """Return the parameters that decide a run (its identity, see ``plan_run``)."""
        params = self.get_params(deep=False)
        return {k: v for k, v in params.items() if k not in _NOT_RUN}

    def _config(
        self,
        seed: int | None = None,
        objective: Objective | None = None,
        batch_size: int | None = None,
        max_epochs: int | None = None,
    ) -> TrainConfig:
        """Return the Trainer's config; None: the fitted batch size and epochs."""
        return TrainConfig.with_options(
            self.trainer_params or {},
            **{k: getattr(self, k) for k in _TRAINING},
            batch_size=self.batch_size_ if batch_size is None else batch_size,
            max_epochs=self.max_epochs_ if max_epochs is None else max_epochs,
            task=objective or self._objective(),
            random_state=seed,
        )

    def _logits(self, X: Any) -> np.ndarray:
        check_is_fitted(self, "model_")
        data = self._dataset(X)
        # Backbones that run on the fly (not cached) get the training batch size:
        # a transformer on 4096 texts at once would need gigabytes of activations.
        cached = self.pipeline_.cached_slots(self.model_)
        backbones = set(self.model_.encoders) - {"tab", *cached}
        batch_size = self.batch_size_ if backbones else 4096
        logits = Trainer(self._config()).predict(self.model_, data, batch_size)
        bad = ~np.isfinite(logits).all(axis=1)
        if bad.any():
            raise FloatingPointError(
                f"The model's outputs are NaN/inf for {int(bad.sum())} row(s), the "
                f"first at position {int(np.argmax(bad))}: its weights are broken."
            )
        return logits

    def explain(
        self,
        X: Any,
        method: Literal["gradient", "permutation"] = "gradient",
        background: Any = None,
        target: Any = None,
        **options: Any,
    ) -> Any:
        """Attribute each row's output to its columns (SHAP-style).

        ``method``: ``"gradient"`` or ``"permutation"``; ``background``: reference
        rows (default: 50 training rows kept at fit); ``target``: which output
        to explain, a task of ``WideDeepMultiTask`` or a target column of a
        multi-target regressor (default: the first); ``options``: see
        :func:`widemm.explain.explain` (``class_index`` picks a class or label).
        """
        from widemm.explain import explain

        check_is_fitted(self, "model_")
        bg = None if background is None else self._frame(background)
        return explain(
            self.model_,
            self.pipeline_,
            self._frame(X),
            bg,
            method,
            output=explained(
                self.targets_, getattr(self, "target_names_", None), target
            ),
            **options,
        )

    def export(
        self,
        path: str | os.PathLike[str],
        format: Literal["onnx", "torch_export"] = "onnx",
    ) -> Path:
        """Export the network as one graph plus its preprocessing (``export.json``).

        ``"onnx"`` runs without torch (:func:`widemm.exported.load_exported`);
        ``"torch_export"`` is a ``torch.export`` program (``torch.export.load``).
        Both take a dynamic batch size; see :mod:`widemm.export` for what is
        covered. Returns the graph's path.
        """
        from widemm.export import export

        check_is_fitted(self, "model_")
        return export(self, path, format)

    def save(self, path: str | os.PathLike[str], report: bool = True) -> None:
        """Write the fitted model to folder ``path`` (safetensors + JSON, no pickle).

        With ``report``, also its ``report.html`` and ``MODEL_CARD.md``
        (:func:`widemm.report.write_report`, which takes held-out rows too).
        """
        check_is_fitted(self, "model_")
        own = {persistence.class_key(type(self)): (type(self), self._fitted)}
        classes = {**pipeline_classes(), **target_classes(), **own}
        persistence.save(path, self, self.model_, classes)
        if report:
            from widemm.report import write_report

            write_report(self, path)

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        tags.input_tags.string = True
        tags.input_tags.categorical = True
        tags.non_deterministic = self.random_state is None
        return tags

    # The targets: checked and fitted by the subclass; split for encoding.
    def _check_y(self, y: Any, X: pd.DataFrame) -> Any:
        return check_target(y, X)

    def _fit_targets(self, y: Any, weight: np.ndarray | None) -> list[Target]:
        raise NotImplementedError

    def _parts(self, y: Any) -> list[Any]:
        """``y`` cut into each target's part (one target: y itself)."""
        return [y]


def _names(target: str | list[str], weight: str | None) -> list[str]:
    """Return the columns of a streamed chunk that are not inputs."""
    names = [target] if isinstance(target, str) else list(target)
    return names if weight is None else [*names, weight]
