"""A frame's model inputs as flat numpy arrays, named ``slot.field``; no torch.

The one place that lays out what the wide, tabular and text preprocessors give
the model: ``FeaturePipeline.transform`` turns these arrays into tensors, and an
exported model (``widemm.onnx_model``) feeds them to its graph by name.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd


def frame_arrays(
    preprocessors: Mapping[str, Any], text_slots: Mapping[str, str], X: pd.DataFrame
) -> dict[str, np.ndarray]:
    """Return the flat model inputs of the rows of X (checked columns).

    Named ``wide``, ``tab.cat``, ``tab.cont``, ``trees`` (the trees' scores of
    the tabular inputs and the text columns' linear scores) and, per text slot,
    ``<slot>.input_ids``, ``<slot>.attention_mask`` and ``<slot>.present``.
    """
    out: dict[str, np.ndarray] = {}
    memo: dict[str, np.ndarray] = {}  # category keys, shared by wide and tab
    if "wide" in preprocessors:
        out["wide"] = preprocessors["wide"].transform_frame(X, memo)
    if "tab" in preprocessors:
        tab = preprocessors["tab"]
        values = tab.transform_frame(X, memo)
        out["tab.cat"] = values[:, : tab.n_cat_].astype(np.int64)
        out["tab.cont"] = values[:, tab.n_cat_ :].astype(np.float32)
    if "trees" in preprocessors:
        out["trees"] = preprocessors["trees"].transform(*tab_arrays(out, len(X)), X)
    if "text" in preprocessors:
        tokens = preprocessors["text"].transform_frame(X)
        for slot, col in text_slots.items():
            out[f"{slot}.input_ids"] = tokens[col].input_ids
            out[f"{slot}.attention_mask"] = tokens[col].attention_mask
            out[f"{slot}.present"] = tokens[col].present
    return out


def tab_arrays(flat: Mapping[str, Any], n_rows: int) -> tuple[np.ndarray, np.ndarray]:
    """Return the categorical codes and continuous values among flat inputs.

    Without a tabular part (trees reading a text column alone), empty arrays of
    ``n_rows`` rows.
    """
    if "tab.cat" not in flat:
        return np.zeros((n_rows, 0), np.int64), np.zeros((n_rows, 0), np.float32)
    return np.asarray(flat["tab.cat"]), np.asarray(flat["tab.cont"])


def nest(flat: Mapping[str, Any]) -> dict[str, Any]:
    """``{"tab.cat": a}`` -> ``{"tab": {"cat": a}}``: a batch as the model reads it."""
    out: dict[str, Any] = {}
    for name, value in flat.items():
        *parents, leaf = name.split(".")
        node = out
        for key in parents:
            node = node.setdefault(key, {})
        node[leaf] = value
    return out


def flatten(batch: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Return a nested batch as flat ``slot.field`` names (inverse of ``nest``)."""
    out: dict[str, Any] = {}
    for key, value in batch.items():
        if isinstance(value, Mapping):
            out.update(flatten(value, f"{prefix}{key}."))
        else:
            out[prefix + key] = value
    return out
