"""Scikit-learn transformers that turn DataFrame columns into model inputs.

Imported on first use: the wide, tabular and text transformers need no torch
(``widemm.onnx_model`` runs them without it); the image one does.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "ImageColumn": "widemm.preprocessing.image",
    "ImagePreprocessor": "widemm.preprocessing.image",
    "TabPreprocessor": "widemm.preprocessing.tabular",
    "TextPreprocessor": "widemm.preprocessing.text",
    "TextTokens": "widemm.preprocessing.text",
    "TreeScores": "widemm.preprocessing.trees",
    "WidePreprocessor": "widemm.preprocessing.wide",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'widemm.preprocessing' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)


def fitted_classes(images: bool = True) -> dict[str, tuple[type, tuple[str, ...]]]:
    """Return the preprocessors (and their scalers) with their fitted attributes.

    What saving writes of each, and all that loading accepts. ``images=False``
    leaves out the image preprocessor, whose module needs torch.
    """
    from sklearn.preprocessing import QuantileTransformer, StandardScaler

    from widemm.persistence import class_key
    from widemm.preprocessing.tabular import TabPreprocessor
    from widemm.preprocessing.text import TextPreprocessor
    from widemm.preprocessing.trees import TreeScores
    from widemm.preprocessing.wide import WidePreprocessor

    names = ("n_features_in_", "feature_names_in_")
    fitted: dict[type, tuple[str, ...]] = {
        WidePreprocessor: (
            *("vocab_", "offsets_", "n_indices_", "ngrams_", "widths_", "inputs_"),
            *names,
        ),
        TabPreprocessor: (
            *("vocab_", "cardinalities_", "embed_dims_", "nan_cols_", "scaler_"),
            *("bag_widths_", "separators_", "date_parts_", "bounds_"),
            *("cont_cols_", "n_cat_", "n_cont_", *names),
        ),
        TextPreprocessor: (
            *("max_lengths_", "tokenizer_json_", "vocab_size_", "pad_id_", *names),
        ),
        TreeScores: (
            *("boosters_", "linear_", "range_", "n_cat_", "n_features_"),
            *("text_vocab_", "text_idf_", "lines_"),
        ),
        StandardScaler: ("mean_", "var_", "scale_", "n_samples_seen_", *names),
        QuantileTransformer: ("n_quantiles_", "quantiles_", "references_", *names),
    }
    if images:
        from widemm.preprocessing.image import ImagePreprocessor

        fitted[ImagePreprocessor] = ("cols_", "image_size_", *names)
    return {class_key(c): (c, keys) for c, keys in fitted.items()}
