"""The training rows kept as explanations' default background."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

BACKGROUND_ROWS = 50  # training rows kept as the default explanation background


def background_rows(
    rows: pd.DataFrame, outputs: np.ndarray, date_cols: Sequence[str]
) -> pd.DataFrame:
    """Return ``BACKGROUND_ROWS`` of ``rows``, spread over the model's outputs.

    ``outputs`` are the trained model's (n_rows, n_outputs) logits on the rows.
    The rows kept sit at evenly spaced quantiles of the output (of the top
    logit, within each predicted class, for several classes), so their mean
    output, an explanation's base value, hardly depends on which rows were
    drawn. Kept JSON-safe (missing -> None; ``date_cols`` stay datetime64), so
    they save with the model.
    """
    chosen = rows.iloc[spread_rows(outputs, BACKGROUND_ROWS)]
    kept = chosen.astype(object).where(chosen.notna(), None)
    for col in date_cols:
        if pd.api.types.is_datetime64_any_dtype(chosen[col]):
            kept[col] = chosen[col]
    return kept


def spread_rows(outputs: np.ndarray, n: int) -> np.ndarray:
    """Return ``n`` row positions at evenly spaced quantiles of ``outputs``.

    One output column: its quantiles. Several (a multiclass model's logits):
    rows are ordered by predicted class, then by their top logit, so each class
    gets its share of the rows, spread over its range.
    """
    if len(outputs) <= n:
        return np.arange(len(outputs))
    if outputs.shape[1] == 1:
        order = np.argsort(outputs[:, 0], kind="stable")
    else:
        order = np.lexsort((outputs.max(1), outputs.argmax(1)))
    picks = ((np.arange(n) + 0.5) * len(outputs) / n).astype(int)
    return order[picks]
