"""Scikit-learn estimators that wire column roles, preprocessors, model and Trainer."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from functools import partial
from typing import Any, Literal, Self

import numpy as np
import pandas as pd
import torch
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.utils.validation import check_is_fitted

from widemm import persistence
from widemm.data import FrameDataset
from widemm.models import Encoder, Fusion
from widemm.pipeline import FeaturePipeline, pipeline_classes
from widemm.runtime import seeded
from widemm.schema import ColumnSchema
from widemm.streaming import ParquetStream
from widemm.targets import (
    encode_labels,
    fit_classes,
    label_task,
    probabilities,
    standardise,
)
from widemm.training import Task, TrainConfig, Trainer, auto_schedule
from widemm.training.callbacks import Callback
from widemm.training.checkpoint import frame_digest, plan_run
from widemm.validation import check_frame, check_target, check_training_data

# Settings that change neither the model nor the data order: not the run's identity.
_NOT_RUN = ("verbose", "device", "num_workers", "callbacks", "checkpoint_dir")
_PIPELINE = FeaturePipeline._get_param_names()  # passed on as they are
_TRAINING = ("learning_rate", "weight_decay", "lr_scheduler", "n_iter_no_change",
             "verbose", "device", "num_workers", "checkpoint_dir")  # fmt: skip


class BaseWideDeep(BaseEstimator):
    """Shared machinery of WideDeepClassifier and WideDeepRegressor.

    Parameters
    ----------
    tab_model, tab_params, text_model, text_params, text_max_length, image_model,
    image_params, image_root, image_size, image_augment, on_error, cache_features,
    share_encoders, fusion, fusion_params, wide, cat_cols, cont_cols, text_cols,
    image_cols, ignore_cols, wide_cols, crossed_cols, scaling, min_frequency
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
    """

    _task: Task
    _fitted: tuple[str, ...] = (  # what saving writes (besides model_'s weights)
        *("pipeline_", "schema_", "history_", "n_outputs_", "batch_size_"),
        *("max_epochs_", "n_features_in_", "feature_names_in_"),
    )

    def __init__(
        self,
        *,
        tab_model: str | Callable[..., Encoder] = "mlp",
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
        text_cols: Sequence[str] | None = None,
        image_cols: Sequence[str] | None = None,
        ignore_cols: Sequence[str] | None = None,
        wide_cols: Sequence[str] | None = None,
        crossed_cols: Sequence[Sequence[str]] | None = None,
        scaling: Literal["standard", "quantile"] | None = "standard",
        min_frequency: int = 5,
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
        self.text_cols = text_cols
        self.image_cols = image_cols
        self.ignore_cols = ignore_cols
        self.wide_cols = wide_cols
        self.crossed_cols = crossed_cols
        self.scaling = scaling
        self.min_frequency = min_frequency
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

    def fit(self, X: Any, y: Any, eval_set: tuple[Any, Any] | None = None) -> Self:
        """Infer column roles, fit the preprocessors, build and train the model.

        Parameters
        ----------
        X : DataFrame, array-like of shape (n_rows, n_columns), or path
            Training inputs (arrays get column names ``x0 .. xN``), or a parquet
            file or folder, streamed in chunks (see ``stream_sample_rows``).
        y : array-like of shape (n_rows,), or str
            Target; with a path, the name of the target column.
        eval_set : tuple (X_valid, y_valid), optional
            Validation data for early stopping, instead of ``validation_fraction``.
        """
        numeric, stream = self._task == "regression", None
        if isinstance(X, str | os.PathLike):
            stream = ParquetStream.open(X, y, self.stream_chunk_rows)
            ids = {"data": stream.identity(), "target": y}
        else:
            X, y = check_training_data(self, X, y, numeric)
            ids = {"data": frame_digest(X), "target": frame_digest(pd.Series(y))}
        # Before any random draw: nothing downstream decides the seed again.
        params = self.get_params(deep=False)
        settings = {k: v for k, v in params.items() if k not in _NOT_RUN}
        run, seed, state = plan_run(self.checkpoint_dir, settings, ids)
        if stream is not None:
            sample = stream.sample(self.stream_sample_rows, seed)
            X, y = check_training_data(self, sample.drop(columns=y), sample[y], numeric)
        target = self._fit_target(y)
        with seeded(seed):
            pipeline = FeaturePipeline(**{k: params[k] for k in _PIPELINE})
            self.pipeline_ = pipeline.fit(X)
            self.schema_: ColumnSchema = pipeline.schema_
            self.model_ = pipeline.build_model(self.n_outputs_)
            data = FrameDataset(pipeline.inputs(X, self.model_), target)
            train, valid, held = data.split(self.validation_fraction, seed, not numeric)
            if eval_set is not None:
                valid = self._dataset(*eval_set)
            n_train = len(train) if stream is None else stream.n_rows - len(held)
            self.batch_size_, self.max_epochs_ = auto_schedule(
                self.batch_size, self.max_epochs, n_train
            )
            if stream is not None:  # train on the stream, minus the validation rows
                stream.skip = X.index.to_numpy()[held]
                stream.transform = partial(self._train_batch, y=ids["target"])
            else:
                train.inputs = pipeline.training_inputs(train.inputs, self.model_)
            trainer = Trainer(self._config(seed), self.callbacks or (), run=run)
            history = trainer.fit(self.model_, stream or train, valid, state)
            pool = torch.randperm(len(X))[:2000]  # for explanations' background
            outputs = trainer.predict(self.model_, data.subset(pool), self.batch_size_)
        self.history_ = pd.DataFrame(history)
        self.pipeline_.keep_background(X.iloc[pool.numpy()], outputs)
        self.model_.cpu()
        return self

    def _frame(self, X: Any) -> pd.DataFrame:
        """X checked against the fit columns; those the model ignores may be absent."""
        return check_frame(self, X, reset=False, optional=self.schema_.ignored)

    def _dataset(self, X: Any, y: Any = None) -> FrameDataset:
        """Model inputs of rows X (checked against the fit columns), and y's codes."""
        X, numeric = self._frame(X), self._task == "regression"
        y = None if y is None else check_target(y, len(X), numeric=numeric)
        target = None if y is None else self._encode_target(y)
        return FrameDataset(self.pipeline_.inputs(X, self.model_), target)

    def _train_batch(self, frame: pd.DataFrame, y: str) -> dict[str, Any]:
        """Turn a chunk of a stream into training inputs and target."""
        data = self._dataset(frame.drop(columns=y), frame[y])
        return self.pipeline_.training_inputs(data.inputs, self.model_)

    def _config(self, seed: int | None = None) -> TrainConfig:
        return TrainConfig.with_options(
            self.trainer_params or {},
            **{k: getattr(self, k) for k in _TRAINING},
            batch_size=self.batch_size_,
            max_epochs=self.max_epochs_,
            task=self._task,
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
        **options: Any,
    ) -> Any:
        """Attribute each row's output to its columns (SHAP-style).

        ``method``: ``"gradient"`` or ``"permutation"``; ``background``: reference
        rows (default: 50 training rows kept at fit); ``options``: see
        :func:`widemm.explain.explain`.
        """
        from widemm.explain import Output, explain

        check_is_fitted(self, "model_")
        bg = None if background is None else self._frame(background)
        scale = (getattr(self, "y_scale_", 1.0), getattr(self, "y_mean_", 0.0))
        output = Output(self._task, getattr(self, "classes_", None), *scale)
        return explain(self.model_, self.pipeline_, self._frame(X), bg, method,
                       output=output, **options)  # fmt: skip

    def save(self, path: str | os.PathLike[str], report: bool = True) -> None:
        """Write the fitted model to folder ``path`` (safetensors + JSON, no pickle).

        With ``report``, also its ``report.html`` and ``MODEL_CARD.md``
        (:func:`widemm.report.write_report`, which takes held-out rows too).
        """
        check_is_fitted(self, "model_")
        own = {persistence.class_key(type(self)): (type(self), self._fitted)}
        persistence.save(path, self, self.model_, {**pipeline_classes(), **own})
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

    # The target: set in fit by the subclass (with n_outputs_), reused for eval_set.
    def _fit_target(self, y: np.ndarray) -> torch.Tensor:
        raise NotImplementedError

    def _encode_target(self, y: np.ndarray) -> torch.Tensor:
        raise NotImplementedError


class WideDeepClassifier(ClassifierMixin, BaseWideDeep):
    """Wide & deep classifier for DataFrames of tabular, text and image columns.

    Two classes train one logit (binary cross-entropy), more one logit per class
    (cross-entropy). Parameters: see :class:`BaseWideDeep`.

    Attributes
    ----------
    classes_ : ndarray
        The class labels.
    schema_ : ColumnSchema
        The role of each column (``print(model.schema_)`` shows a table).
    pipeline_ : FeaturePipeline
        DataFrame -> model inputs: the column roles and fitted preprocessors.
    model_ : WideDeep
        The trained network.
    history_ : DataFrame
        Per-epoch losses, validation metric, learning rate and seconds.
    n_features_in_, feature_names_in_ : int, ndarray of str

    Examples
    --------
    >>> model = WideDeepClassifier(random_state=0)
    >>> model.fit(X_train, y_train)  # doctest: +SKIP
    >>> model.predict_proba(X_test)[:, 1]  # doctest: +SKIP
    """

    _fitted = (*BaseWideDeep._fitted, "classes_")

    @property
    def _task(self) -> Task:  # type: ignore[override]
        return label_task(getattr(self, "classes_", np.arange(2)))

    def _fit_target(self, y: np.ndarray) -> torch.Tensor:
        self.classes_ = fit_classes(y)
        self.n_outputs_ = 1 if self._task == "binary" else len(self.classes_)
        return self._encode_target(y)

    def _encode_target(self, y: np.ndarray) -> torch.Tensor:
        return encode_labels(self.classes_, y)

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities of shape (n_rows, n_classes), columns as ``classes_``."""
        return probabilities(self._logits(X), self._task)

    def predict(self, X: Any) -> np.ndarray:
        """Return the most probable class of each row."""
        proba = self.predict_proba(X)  # checks that the model is fitted
        return self.classes_[proba.argmax(axis=1)]


class WideDeepRegressor(RegressorMixin, BaseWideDeep):
    """Wide & deep regressor for DataFrames of tabular, text and image columns.

    The target is standardised for training and mapped back in ``predict``. See
    :class:`BaseWideDeep` for the parameters and :class:`WideDeepClassifier` for
    the fitted attributes (all but ``classes_``), plus ``y_mean_`` and ``y_scale_``.
    """

    _task: Task = "regression"
    _fitted = (*BaseWideDeep._fitted, "y_mean_", "y_scale_")

    def _fit_target(self, y: np.ndarray) -> torch.Tensor:
        self.y_mean_, self.y_scale_ = standardise(y)
        self.n_outputs_ = 1
        return self._encode_target(y)

    def _encode_target(self, y: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(((y - self.y_mean_) / self.y_scale_).astype(np.float32))

    def predict(self, X: Any) -> np.ndarray:
        """Predicted values of shape (n_rows,)."""
        return self._logits(X)[:, 0].astype(np.float64) * self.y_scale_ + self.y_mean_
