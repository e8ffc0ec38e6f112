"""The estimators' shared machinery: columns -> pipeline -> model -> Trainer."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal, Self

import numpy as np
import pandas as pd
import torch
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

from widemm import persistence
from widemm.data import FrameDataset
from widemm.estimators.fitting import calibrate, train_from_start
from widemm.estimators.params import (
    set_shared_parameters,
    sign,
    training_parameters,
)
from widemm.estimators.pretraining import Pretrained, embed, pretrain
from widemm.estimators.rows import read_rows
from widemm.estimators.saving import saved_classes
from widemm.schema import ColumnSchema
from widemm.targets import Outputs, Target
from widemm.training import TrainConfig, Trainer
from widemm.training.callbacks import Callback
from widemm.training.contrastive import ContrastiveObjective
from widemm.training.objective import Objective
from widemm.validation import check_frame, check_target


class BaseWideDeep(BaseEstimator):
    """Shared machinery of WideDeepClassifier, WideDeepRegressor and WideDeepMultiTask.

    How columns become model inputs and which network they feed (``tab_model``,
    ``text_model``, ``image_model``, ``fusion`` and their ``*_params``,
    ``trees``, the column roles ``cat_cols`` ... ``crossed_cols``, ``scaling``,
    ``image_size``, ``device``, ``verbose``, ...): the parameters of
    :class:`widemm.pipeline.FeaturePipeline`, which declares and documents each.
    Training settings (``learning_rate``, ``weight_decay``, ``lr_scheduler``,
    ``n_iter_no_change``, ``num_workers``, ``checkpoint_dir``): those of
    :class:`widemm.training.TrainConfig`. With ``checkpoint_dir``, ``fit`` run
    again with the same settings and data resumes from the checkpoint (a finished
    run trains no more); with other settings or data it warns, naming what
    changed, and starts fresh.

    Parameters
    ----------
    max_epochs, batch_size : int or "auto"
        Training length and rows per step; ``"auto"`` adapts both to the number
        of training rows (``widemm.training.auto_schedule``: 256 rows and 20
        epochs from 10,000 rows on, smaller batches and more epochs below). The
        values used are ``max_epochs_`` and ``batch_size_``.
    validation_fraction : float
        Share of the training rows held out for early stopping: drawn at random
        (stratified for classifiers), or the last rows when they are in time
        order (``time_ordered``). Ignored when ``fit`` gets an ``eval_set``; 0
        disables it.
    random_state : int, RandomState or None
        Fixes model initialisation, the validation split, shuffling and dropout.
    trainer_params : dict, optional
        More :class:`widemm.training.TrainConfig` settings: ``precision``
        ("bf16", "fp16"), ``accumulate_grad_batches``, ``clip_grad_norm``,
        ``warmup_fraction``, ``activation_checkpointing``, ``strategy``.
    callbacks : list of Callback, optional
        Extra training callbacks (``widemm.training.callbacks``): loggers,
        ``UnfreezeBackbones``, your own.
    stream_sample_rows, stream_chunk_rows : int
        When ``fit`` reads a parquet path: rows sampled to fit the preprocessors,
        and rows read (and held in memory) at a time.
    calibrate : bool
        After training, calibrate on the validation rows: classifiers fit a
        temperature (temperature scaling; the ranking of classes is unchanged),
        regressors with ``quantiles`` shift each quantile so that its share of
        validation rows below it is its level (split-conformal), for intervals
        that cover what they claim. Needs validation rows.
    pretrained : Pretrained, optional
        What :meth:`pretrain` learned from unlabeled rows (it sets this). ``fit``
        then also trains from it: its preprocessors and weights, the heads new.
        It keeps whichever model, the pretrained start or a fresh one (what
        ``fit`` alone gives), scores better on the validation rows, says which
        in ``start_``, and warns when the pretrained start loses.

    Notes
    -----
    Each estimator adds its task options (``class_weight``, ``quantiles``, ...).
    The signature is built from where each parameter is declared (see
    :mod:`widemm.estimators.params`).
    """

    _fitted: tuple[str, ...] = (  # what saving writes (besides model_'s weights)
        *("pipeline_", "schema_", "history_", "targets_", "batch_size_"),
        *("max_epochs_", "n_features_in_", "feature_names_in_", "target_names_"),
        *("start_", "head_shares_"),
    )
    targets_: list[Target]
    # Of the shared parameters (see widemm.estimators.params), those read here:
    callbacks: Sequence[Callback] | None
    checkpoint_dir: str | os.PathLike[str] | None
    verbose: int

    def __init__(
        self,
        *,
        max_epochs: int | Literal["auto"] = "auto",
        batch_size: int | Literal["auto"] = "auto",
        validation_fraction: float = 0.1,
        random_state: int | np.random.RandomState | None = None,
        trainer_params: Mapping[str, Any] | None = None,
        callbacks: Sequence[Callback] | None = None,
        stream_sample_rows: int = 100_000,
        stream_chunk_rows: int = 65_536,
        calibrate: bool = False,
        pretrained: Pretrained | None = None,
        **params: Any,
    ) -> None:
        self.max_epochs = max_epochs
        self.batch_size = batch_size
        self.validation_fraction = validation_fraction
        self.random_state = random_state
        self.trainer_params = trainer_params
        self.callbacks = callbacks
        self.stream_sample_rows = stream_sample_rows
        self.stream_chunk_rows = stream_chunk_rows
        self.calibrate = calibrate
        self.pretrained = pretrained
        set_shared_parameters(self, params)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """Give an estimator's own ``__init__`` the whole signature (see params)."""
        super().__init_subclass__(**kwargs)
        if "__init__" in vars(cls):  # its own parameters, and its bases'
            bases = [k for k in reversed(cls.__mro__[1:]) if "__init__" in vars(k)]
            sign(
                cls.__init__,
                *(k.__init__ for k in bases if issubclass(k, BaseWideDeep)),
            )

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
        rows, plan = read_rows(self, X, y, eval_set, sample_weight)
        self.targets_ = self._fit_targets(rows.y, rows.weight)
        kept, self.start_ = train_from_start(self, rows, plan)
        self.pipeline_, self.model_ = kept.pipeline, kept.model
        self.batch_size_, self.max_epochs_ = kept.batch_size, kept.max_epochs
        self.head_shares_ = kept.shares
        self.schema_: ColumnSchema = kept.pipeline.schema_
        if self.calibrate:
            calibrate(self.targets_, kept)
        self.history_ = pd.DataFrame(kept.history)
        self.pipeline_.keep_background(rows.X.iloc[kept.pool], kept.outputs)
        self.model_.cpu()
        return self

    @property
    def outputs_(self) -> Outputs:
        """The targets' decoding of the model's logits (see ``targets.Outputs``)."""
        check_is_fitted(self, "targets_")
        return Outputs(self.targets_, getattr(self, "target_names_", None))

    def _objective(self) -> Objective:
        """Return the targets' heads' loss, scored in the targets' units."""
        heads = [t.head() for t in self.targets_]
        return Objective(heads, scorer=self.outputs_.scores)

    def _frame(self, X: Any) -> pd.DataFrame:
        """X checked against the fit columns; those the model ignores may be absent."""
        schema = self.pipeline_.schema_
        X = check_frame(self, X, reset=False, optional=schema.ignored)
        schema.check_values(X)
        return X

    def _encode(self, y: Any) -> torch.Tensor:
        """Encode y: the targets' columns side by side, float32 (NaN where unknown)."""
        pairs = zip(self.targets_, self._parts(y), strict=True)
        return torch.from_numpy(np.concatenate([t.encode(p) for t, p in pairs], 1))

    def _dataset(self, X: Any, y: Any = None) -> FrameDataset:
        """Model inputs of rows X (checked against the fit columns), and y's codes."""
        X = self._frame(X)
        target = None if y is None else self._encode(self._check_y(y, X))
        return FrameDataset(self.pipeline_.inputs(X, self.model_), target)

    def _config(self, **fixed: Any) -> TrainConfig:
        """Return a Trainer's config: training parameters, ``fixed``, trainer_params."""
        training = training_parameters(self.get_params(deep=False))
        return TrainConfig.with_options(self.trainer_params or {}, **training | fixed)

    def logits(self, X: Any) -> np.ndarray:
        """Return the model's logits (n_rows, n_outputs) for the rows of X.

        Every target's block side by side; ``outputs_`` decodes them.
        """
        check_is_fitted(self, "model_")
        data = self._dataset(X)
        # Backbones that run on the fly (not cached) get the training batch size:
        # a transformer on 4096 texts at once would need gigabytes of activations.
        cached = self.pipeline_.cached_slots(self.model_)
        backbones = set(self.model_.encoders) - {"tab", *cached}
        batch_size = self.batch_size_ if backbones else 4096
        config = self._config(objective=self._objective(), batch_size=batch_size)
        logits = Trainer(config).predict(self.model_, data, batch_size)
        bad = ~np.isfinite(logits).all(axis=1)
        if bad.any():
            raise FloatingPointError(
                f"The model's outputs are NaN/inf for {int(bad.sum())} row(s), the "
                f"first at position {int(np.argmax(bad))}: its weights are broken."
            )
        return logits

    def scores(self, X: Any, y: Any) -> dict[str, float]:
        """Score the model on labelled rows, in the targets' units.

        Classes: accuracy, ROC AUC, log loss; label sets: micro and macro ROC
        AUC, subset accuracy; values: R², RMSE, MAE (see :mod:`widemm.scores`).
        Several targets prefix each score with the target's name.
        """
        X = self._frame(X)
        codes = self._encode(self._check_y(y, X)).numpy()
        return self.outputs_.scores(self.logits(X), codes)

    def pretrain(
        self,
        X: Any,
        *,
        epochs: int = 20,
        batch_size: int = 256,
        projection_dim: int = 128,
        corruption: float = 0.3,
        learning_rate: float = 1e-3,
    ) -> Self:
        """Learn from rows without labels; set ``pretrained`` to what it learned.

        Fits the column roles and preprocessors on ``X`` and trains each
        modality's encoder, a projection to ``projection_dim`` and the fusion
        contrastively (see :func:`widemm.estimators.pretraining.pretrain`:
        ``corruption`` is the rate of swapped values and dropped modalities).
        Every later ``fit`` of this estimator and of its clones starts from the
        result, a :class:`~widemm.estimators.pretraining.Pretrained` (its
        ``history`` has the loss per epoch), and keeps it only if it validates
        better than a fresh start. ``set_params(pretrained=None)`` goes back to
        plain fits. Returns the estimator.
        """
        X = check_frame(self, X, reset=True)
        config = self._config(
            objective=ContrastiveObjective(),
            batch_size=batch_size,
            max_epochs=epochs,
            learning_rate=learning_rate,
            n_iter_no_change=None,
        )
        self.pretrained = pretrain(
            X,
            self.get_params(deep=False),
            config,
            epochs=epochs,
            batch_size=batch_size,
            projection_dim=projection_dim,
            corruption=corruption,
        )
        return self

    def embed(self, X: Any, column: Any = None) -> np.ndarray:
        """Each row's fused embedding (n_rows, fusion output), or one column's.

        ``column`` names a text or image column (its encoder's embedding,
        projected after ``pretrain``) or a tabular one (the table's). Before
        ``fit``, the embeddings are the pretrained ones (``pretrained``): a
        row's text and image embeddings are aligned, and cosine similarity
        between them retrieves one from the other.
        """
        if hasattr(self, "model_"):
            pipeline, model = self.pipeline_, self.model_
        elif self.pretrained is not None:
            pipeline, model = self.pretrained.start({})
        else:
            from sklearn.exceptions import NotFittedError

            raise NotFittedError("embed needs a model: call pretrain or fit first.")
        return embed(pipeline, model, check_frame(self, X, reset=False), column)

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
            output=self.outputs_.block(target),
            **options,
        )

    def export(
        self,
        path: str | os.PathLike[str],
        format: Literal["onnx", "torch_export"] = "onnx",
    ) -> Path:
        """Export the network as one graph plus its preprocessing (``export.json``).

        ``"onnx"`` runs without torch (:func:`widemm.onnx_model.load_onnx`);
        ``"torch_export"`` is a ``torch.export`` program (``torch.export.load``).
        Both take a dynamic batch size; see :mod:`widemm.export` for what is
        covered. Returns the graph's path.
        """
        from widemm.export import export

        check_is_fitted(self, "model_")
        return export(self, path, format)

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the fitted model to folder ``path`` (safetensors + JSON, no pickle)."""
        check_is_fitted(self, "model_")
        # Training-time objects, not needed to predict (the model holds what the
        # pretraining taught it): saved as None.
        classes, unsaved = saved_classes([type(self)]), ("callbacks", "pretrained")
        persistence.save(path, self, self.model_, classes, unsaved)

    def report(self, folder: str | os.PathLike[str], data: Any = None) -> Path:
        """Write ``report.html`` and ``MODEL_CARD.md`` into ``folder``; return the page.

        ``data``: held-out labelled rows ``(X, y)``, for metrics, plots and
        explanations (:mod:`widemm.report`). Matplotlib's backend is untouched.
        """
        from widemm.report import write_report

        check_is_fitted(self, "model_")
        return write_report(self, folder, data)

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


sign(BaseWideDeep.__init__)
