"""Statistics of a frame's columns, kept with the pipeline for the model report."""

from __future__ import annotations

import pandas as pd


def describe_columns(X: pd.DataFrame) -> pd.DataFrame:
    """Describe each column: dtype, missing share, distinct values, range."""
    numeric = X.select_dtypes("number")
    rows = []
    for col in X.columns:
        s = X[col]
        try:
            distinct = int(s.nunique())
        except TypeError:  # unhashable cells (arrays, images)
            distinct = -1
        row = {"column": col, "dtype": str(s.dtype), "missing": float(s.isna().mean())}
        row["distinct"] = distinct
        if col in numeric:
            row.update(mean=float(s.mean()), min=float(s.min()), max=float(s.max()))
        rows.append(row)
    columns = ["column", "dtype", "missing", "distinct", "mean", "min", "max"]
    return pd.DataFrame(rows, columns=columns).round(4)
