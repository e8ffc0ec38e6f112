"""Dates and multi-valued cells: telling them apart, and reading them.

Used by ``infer_schema`` (which column is a date or a list of names), by the
tabular preprocessor (the calendar features of a date, the items of a list) and
by ``fit`` (whether the rows come in time order).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from widemm.validation import first_row

SEPARATORS = (",", ";", "|")
# Strings that start like a date: 2009-01-19, 19/01/2009, 19 Jan 2009, Jan 19, 2009.
_DATE_LIKE = re.compile(
    r"^\s*(\d{4}[-/.]\d{1,2}[-/.]\d{1,2}"
    r"|\d{1,2}[-/.]\d{1,2}[-/.]\d{2,4}"
    r"|\d{1,2}\s+[A-Za-z]{3,9}\.?,?\s+\d{4}"
    r"|[A-Za-z]{3,9}\.?\s+\d{1,2},?\s+\d{4})"
)
_EPOCH = np.datetime64("1970-01-01", "ns")


def is_date_like(sample: pd.Series) -> bool:
    """Tell whether strings are dates: 95% look like one, and pandas parses them."""
    if not sample.map(lambda v: isinstance(v, str)).all():
        return False
    if sample.str.match(_DATE_LIKE).mean() < 0.95:
        return False
    parsed = pd.to_datetime(sample, errors="coerce", format="mixed")
    return bool(parsed.notna().mean() >= 0.95)


def date_values(s: pd.Series) -> np.ndarray:
    """Return a column as datetime64[ns] (UTC, naive), NaT where missing.

    Strings are parsed; one that does not parse raises, naming its row.
    """
    if pd.api.types.is_datetime64_any_dtype(s.dtype):
        parsed = s
    else:
        parsed = pd.to_datetime(s, errors="coerce", format="mixed", utc=True)
        bad = first_row(s, parsed.isna().to_numpy() & s.notna().to_numpy())
        if bad is not None:
            raise ValueError(
                f"Column {s.name!r} holds dates but row {bad[0]} holds {bad[1]!r}, "
                f"which is not one. Fix it, make it missing, or pass "
                f"cat_cols=[{s.name!r}]."
            )
    if isinstance(parsed.dtype, pd.DatetimeTZDtype):
        parsed = parsed.dt.tz_convert("UTC").dt.tz_localize(None)
    return parsed.to_numpy(dtype="datetime64[ns]")


def time_order(X: pd.DataFrame, date_cols: Sequence[str]) -> str | None:
    """Tell what puts the rows of X in time order, if anything does.

    Returns ``"the index"`` when the index holds datetimes or periods, or else
    the first of ``date_cols`` holding a date in every row, that never falls
    and takes more than one value; None when neither does.
    """
    if isinstance(X.index, pd.DatetimeIndex | pd.PeriodIndex):
        return "the index" if _rises(X.index.to_numpy()) else None
    for col in date_cols:
        values = date_values(X[col])
        if not np.isnat(values).any() and _rises(values):
            return f"column {col!r}"
    return None


def _rises(values: np.ndarray) -> bool:
    """Tell whether values never fall and take more than one value."""
    return (
        len(values) > 1
        and bool((values[1:] >= values[:-1]).all())
        and (values[-1] > values[0])
    )


def date_parts(values: np.ndarray) -> dict[str, np.ndarray]:
    """Every calendar feature of datetime64[ns] values (NaN where missing).

    ``days`` since 1970 (elapsed time), and the cyclical position in the year,
    the week and the day as a sin/cos pair each.
    """
    missing = np.isnat(values)
    days = (values - _EPOCH) / np.timedelta64(1, "D")
    index = pd.DatetimeIndex(values)
    cycles = {
        "year": (index.day_of_year.to_numpy(float) - 1) / 365.25,
        "week": index.day_of_week.to_numpy(float) / 7,
        "day": (index.hour.to_numpy(float) + index.minute.to_numpy(float) / 60) / 24,
    }
    parts = {"days": days}
    for name, turn in cycles.items():
        parts[f"{name}_sin"] = np.sin(2 * np.pi * turn)
        parts[f"{name}_cos"] = np.cos(2 * np.pi * turn)
    for v in parts.values():
        v[missing] = np.nan
    return parts


def varying_parts(values: np.ndarray) -> list[str]:
    """Return the calendar features worth keeping: those that vary in fit."""
    parts = date_parts(values)
    keep = []
    for name, v in parts.items():
        finite = v[~np.isnan(v)]
        if name == "days" or (len(finite) and np.ptp(finite) > 1e-9):
            keep.append(name)
    return keep


def list_separator(sample: pd.Series) -> str | None:
    """Return the separator of a column of delimited lists ("Ann, Bob"), or None.

    A separator counts when at least 5% of values hold it, its items are short
    (4 words or fewer on average) and they look like items, not clauses: the
    items after the first start with a capital or a digit 90% of the time
    (names), or they repeat across rows (tags: at most 70% of items distinct,
    40% of occurrences of items seen twice). Prose has commas too, but its
    pieces are long, lower case after a comma, and rarely repeat. Inverted
    titles and names ("Woman for Joe, The", "Allard, K") are not lists either:
    90% of their distinct values have two parts, the first distinct in 80% of
    them, the second one word, or led by one word (an article) in a third of them.
    """
    if not sample.map(lambda v: isinstance(v, str)).all():
        return None
    for sep in SEPARATORS:
        if sample.str.contains(sep, regex=False).mean() < 0.05:
            continue
        lists = sample.str.split(sep, regex=False)
        items = lists.explode().str.strip()
        items = items[items != ""]
        if items.str.split().str.len().mean() > 4:
            continue
        later = lists.map(lambda v: [x.strip() for x in v[1:]]).explode().dropna()
        later = later[later != ""]
        capitals = later.str.match(r"[A-Z0-9]").mean() if len(later) else 0.0
        if _inverted(sample, sep):
            continue
        counts = items.value_counts()
        distinct = len(counts) / len(items)
        repeated = (items.map(counts) >= 2).mean()
        if capitals >= 0.9 or (distinct <= 0.7 and repeated >= 0.4):
            return sep
    return None


def _inverted(sample: pd.Series, sep: str) -> bool:
    """Tell whether the separated values are inverted titles or names (see above)."""
    cells = pd.Series(sample[sample.str.contains(sep, regex=False)].unique())
    parts = cells.str.split(sep, regex=False)
    if not len(cells) or (parts.str.len() == 2).mean() < 0.9:
        return False
    first, second = parts.str[0].str.strip(), parts.str[-1].str.strip()
    lead = second.str.split().str[0]
    return first.nunique() >= 0.8 * len(cells) and (
        (second.str.split().str.len() == 1).mean() >= 0.9
        or lead.value_counts().iloc[0] >= len(cells) / 3
    )


def is_list_cells(sample: pd.Series) -> bool:
    """Tell whether cells hold lists, tuples, sets or arrays of scalars."""
    return bool(
        sample.map(lambda v: isinstance(v, list | tuple | set | np.ndarray)).all()
    )


def item_lists(s: pd.Series, sep: str | None) -> pd.Series:
    """Each cell's items as a list of str keys (positional index), None if missing.

    Strings are split on ``sep`` and stripped; list-like cells are taken as they
    are; a scalar is a one-item list.
    """

    def items(v: Any) -> list[str] | None:
        if isinstance(v, list | tuple | set | np.ndarray):
            return [str(x) for x in v if not _missing(x)]
        if _missing(v):
            return None
        if isinstance(v, str) and sep is not None:
            return [x.strip() for x in v.split(sep) if x.strip()]
        return [str(v)]

    return pd.Series([items(v) for v in s.to_numpy(dtype=object)], dtype=object)


def _missing(v: Any) -> bool:
    return v is None or (isinstance(v, float) and np.isnan(v)) or v is pd.NA
