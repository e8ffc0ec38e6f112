"""The column roles, the preprocessors they need, the trees fitted on the targets.

Also whether the rows come in time order (``time_ordered``), which the trees'
folds and an estimator's validation rows follow.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch

from widemm.columns import time_order
from widemm.heads import Head
from widemm.models.text import pretrained_text_name
from widemm.preprocessing import (
    ImagePreprocessor,
    TabPreprocessor,
    TextPreprocessor,
    WidePreprocessor,
)
from widemm.preprocessing.arrays import frame_arrays, tab_arrays
from widemm.preprocessing.trees import TreeScores
from widemm.schema import ColumnSchema, infer_schema

# Training rows from which trees="auto" fits trees: below, their 5-fold models
# learn from too few rows (wine, 142 rows: accuracy 0.983 -> 0.966 with them).
# With text or image columns the fit keeps them only if they validate better,
# which needs validation rows enough: from 1,000 training rows (emoji, 380
# rows, 38 to validate: 0.818 -> 0.810 with the choice).
TREES_MIN_ROWS = {"table": 300, "text or images": 1_000}


# The pipeline's parameters that fix columns' roles (``infer_schema``'s).
ROLE_PARAMS = (
    "cat_cols",
    "cont_cols",
    "date_cols",
    "multi_cols",
    "text_cols",
    "image_cols",
    "ignore_cols",
    "wide_cols",
)


def column_roles(X: pd.DataFrame, params: Mapping[str, Any]) -> ColumnSchema:
    """Return X's column roles: those the pipeline's ``params`` fix, others inferred."""
    fixed = {k: params[k] for k in ROLE_PARAMS}
    return infer_schema(X, **fixed, crossed_cols=params["crossed_cols"] or ())


def rows_time_order(
    time_ordered: bool | str, X: pd.DataFrame, schema: ColumnSchema
) -> str | None:
    """Return what puts X's rows in time order as ``time_ordered`` says, or None.

    ``"auto"``: a rising datetime index or date column (``columns.time_order``).
    """
    if time_ordered == "auto":
        return time_order(X, schema.date_cols)
    return "time_ordered=True" if time_ordered else None


def make_preprocessors(
    schema: ColumnSchema, params: Mapping[str, Any]
) -> dict[str, Any]:
    """Return the (unfitted) preprocessors a schema's columns need.

    ``params`` are the pipeline's: ``wide``, ``max_categories``, ``scaling``,
    ``min_frequency``, ``text_model``, ``text_max_length``, ``image_root``,
    ``image_size``, ``on_error``.
    """
    s = schema
    if not s.deep_cols:
        raise ValueError(f"No usable column: every column was ignored.\n{s}")
    pre: dict[str, Any] = {}
    if params["wide"] and (s.wide_cols or s.crossed_cols):
        text = [c for c in s.wide_cols if c in s.text_cols]
        pre["wide"] = WidePreprocessor(
            [c for c in s.wide_cols if c not in text],
            s.crossed_cols,
            max_categories=params["max_categories"],
            text_cols=text,
        )
    if s.tab_cols:
        pre["tab"] = TabPreprocessor(
            s.cat_cols,
            s.cont_cols,
            s.date_cols,
            s.multi_cols,
            scaling=params["scaling"],
            min_frequency=params["min_frequency"],
            max_categories=params["max_categories"],
        )
    if s.text_cols:
        pre["text"] = TextPreprocessor(
            s.text_cols,
            tokenizer=pretrained_text_name(params["text_model"]),
            max_length=params["text_max_length"],
        )
    if s.image_cols:
        pre["image"] = ImagePreprocessor(
            s.image_cols,
            root=params["image_root"],
            image_size=_image_size(params["image_size"], params["image_model"]),
            on_error=params["on_error"],
        )
    return pre


def _image_size(size: int | str, image_model: Any) -> int | str:
    """``"auto"`` stays for the small CNN (the images' size); else 224."""
    return 224 if size == "auto" and image_model != "small_cnn" else size


def tree_kind(
    trees: bool | str, n_rows: int, schema: ColumnSchema, tab: TabPreprocessor | None
) -> bool | None:
    """Return what ``trees`` gives: True boosted trees, False a line, None neither.

    ``"auto"``: trees from ``TREES_MIN_ROWS`` rows; below, a table without text
    or images gets a line of its continuous inputs (``TreeScores(boost=False)``).
    Trees need something to read: a tabular part or a text column.
    """
    media = bool(schema.text_cols or schema.image_cols)
    least = TREES_MIN_ROWS["text or images" if media else "table"]
    if tab is None and not schema.text_cols:
        return None
    if trees is True or (trees == "auto" and n_rows >= least):
        return True
    if trees == "auto" and not media and tab is not None and tab.n_cont_:
        return False
    return None


def fit_trees(
    tab: TabPreprocessor | None,
    X: pd.DataFrame,
    y: np.ndarray,
    heads: Sequence[Head],
    sample_weight: np.ndarray | None,
    text_cols: Sequence[str] = (),
    boost: bool = True,
    ordered: bool = False,
) -> TreeScores:
    """Fit the trees on the tabular inputs of X (seeded by torch's RNG).

    ``y``: the targets encoded for ``heads``; ``tab``: the fitted tabular
    preprocessor, whose inputs the trees read (None: there are none), beside
    the scores of linear models of the ``text_cols``; ``boost`` and
    ``ordered``: see ``TreeScores``.
    """
    arrays = frame_arrays({} if tab is None else {"tab": tab}, {}, X)
    layout = [
        (h.kind, h.n_targets, h.n_classes, len(h.quantiles or (None,))) for h in heads
    ]
    seed = int(torch.randint(2**31 - 1, ()))
    trees = TreeScores(
        layout,
        random_state=seed,
        text_cols=tuple(text_cols),
        boost=boost,
        ordered=ordered,
    )
    y = y.reshape(len(y), -1)
    return trees.fit(*tab_arrays(arrays, len(X)), y, sample_weight, X)
