"""Categorical codes and scaled continuous values for the deep tabular models."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any, Literal, Self

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.preprocessing import QuantileTransformer, StandardScaler
from sklearn.utils.validation import check_is_fitted

from widemm.columns import (
    date_parts,
    date_values,
    item_lists,
    list_separator,
    varying_parts,
)
from widemm.validation import (
    category_keys,
    check_frame,
    keys_of,
    numeric_values,
    positions,
)

MISSING, RARE = 0, 1  # reserved codes; known values start at 2 (MISSING pads bags)
N_RESERVED = 2
# How far beyond its fit range a continuous value is followed, in widths of that
# range: y = x + noise fitted on x in [0, 1] is predicted at R^2 0.99 on x in
# [0.8, 1.3] with the trees' linear base; clipped at the range, 0.1.
REACH = 1.0


def embed_dim(cardinality: int, max_dim: int) -> int:
    """Embedding size rule of thumb (fast.ai): 1.6 * cardinality ** 0.56, capped."""
    return int(min(max_dim, round(1.6 * cardinality**0.56)))


class TabPreprocessor(TransformerMixin, BaseEstimator):
    """Encode categorical columns as integer codes and scale continuous columns.

    Categorical codes: 0 = missing, 1 = rare (seen fewer than ``min_frequency``
    times in fit, beyond the ``max_categories`` most frequent, or unseen),
    2.. = known values, most frequent first. A multi-valued column (lists, or
    delimited strings such as ``"Ann, Bob"``) takes as many code columns as 99%
    of fit rows have items or fewer (at most ``max_items``), one item's code
    each, padded with 0; a longer list keeps its first items. A date column
    becomes continuous features: the days since 1970, and sin/cos pairs of the
    time of year, week and day where these vary in fit. Continuous values are
    scaled and clipped to their fit range widened by its width on either side
    (``REACH``): a linear term can follow a value up to there, and an outlier
    far beyond it cannot throw the model off; missing
    values become 0 (the mean after standard scaling) and, for columns with
    missing values in fit, are flagged in an extra 0/1 column.

    Parameters
    ----------
    cat_cols, cont_cols, date_cols, multi_cols : list of str, optional
        By default, non-numeric columns are categorical, datetimes are dates
        and numeric columns continuous.
    scaling : {"standard", "quantile", None}
        ``"quantile"`` maps each continuous column to a normal distribution through
        its quantiles, robust to heavy tails.
    min_frequency : int
        Categorical values (and items) seen fewer times share the "rare" code.
    max_categories : int
        Known values kept per categorical column: the most frequent. Bounds the
        embeddings of high-cardinality columns and ids.
    max_items : int
        Items kept per row of a multi-valued column (the first ones).
    max_embed_dim : int
        Cap of the embedding size rule.

    Attributes
    ----------
    vocab_ : dict of str to pandas.Index
        Known values (items, for a multi-valued column) of each categorical and
        multi-valued column; code = position + 2.
    cardinalities_ : list of int
        Number of codes per categorical, then multi-valued, column.
    embed_dims_ : list of int
        Suggested embedding size per categorical, then multi-valued, column.
    bag_widths_ : list of int
        Code columns of each multi-valued column (the last ``vocab_`` entries).
    separators_ : dict of str to str or None
        The separator of each multi-valued column of strings.
    date_parts_ : dict of str to list of str
        Calendar features of each date column (``columns.date_parts``).
    scaler_ : sklearn transformer or None
        Fitted scaler of the continuous features.
    bounds_ : ndarray of shape (2, n_features)
        Scaled fit range of each continuous feature, widened by ``REACH`` times
        its width on either side; values are clipped to it.
    cont_cols_ : list of str
        Continuous columns.
    nan_cols_ : list of str
        Continuous and date columns that get a missing-value indicator.
    n_cat_, n_cont_ : int
        Leading code columns and trailing float columns of the output.

    Examples
    --------
    >>> import pandas as pd
    >>> X = pd.DataFrame({"city": ["a", "a", "b"], "age": [20.0, None, 40.0]})
    >>> TabPreprocessor(min_frequency=1).fit_transform(X)
    array([[ 2., -1.,  0.],
           [ 2.,  0.,  1.],
           [ 3.,  1.,  0.]])
    """

    def __init__(
        self,
        cat_cols: Sequence[str] | None = None,
        cont_cols: Sequence[str] | None = None,
        date_cols: Sequence[str] | None = None,
        multi_cols: Sequence[str] = (),
        *,
        scaling: Literal["standard", "quantile"] | None = "standard",
        min_frequency: int = 5,
        max_categories: int = 10_000,
        max_items: int = 32,
        max_embed_dim: int = 32,
    ) -> None:
        self.cat_cols = cat_cols
        self.cont_cols = cont_cols
        self.date_cols = date_cols
        self.multi_cols = multi_cols
        self.scaling = scaling
        self.min_frequency = min_frequency
        self.max_categories = max_categories
        self.max_items = max_items
        self.max_embed_dim = max_embed_dim

    def fit(self, X: Any, y: Any = None) -> Self:
        X = check_frame(self, X, reset=True)
        cat_cols, cont_cols, date_cols = self._columns(X)
        self.vocab_ = {c: self._vocab(category_keys(X[c])) for c in cat_cols}
        self.separators_ = {c: _separator(X[c]) for c in self.multi_cols}
        self.bag_widths_ = []
        for col in self.multi_cols:
            lists = item_lists(X[col], self.separators_[col])
            items = lists.explode().dropna().to_numpy(dtype=object)
            self.vocab_[col] = self._vocab(items)
            lengths = lists.map(lambda v: len(v) if v else 0)
            width = int(np.ceil(np.quantile(lengths, 0.99)))  # rows' first items
            self.bag_widths_.append(max(1, min(self.max_items, width)))
        self.cardinalities_ = [N_RESERVED + len(v) for v in self.vocab_.values()]
        self.embed_dims_ = [
            embed_dim(n, self.max_embed_dim) for n in self.cardinalities_
        ]
        self.cont_cols_ = list(cont_cols)
        self.date_parts_ = {c: varying_parts(date_values(X[c])) for c in date_cols}
        cont, nan = self._cont_values(X)
        sources = [*cont_cols, *date_cols]
        self.nan_cols_ = [c for j, c in enumerate(sources) if nan[:, j].any()]
        self.scaler_ = self._make_scaler(len(X))
        if self.scaler_ is not None and cont.shape[1]:
            self.scaler_.fit(cont)
        scaled = self._scale(cont)
        with warnings.catch_warnings():  # a feature without a number: NaN bounds
            warnings.simplefilter("ignore", RuntimeWarning)
            low, high = np.nanmin(scaled, 0), np.nanmax(scaled, 0)
        reach = REACH * (high - low)
        self.bounds_ = np.stack([low - reach, high + reach])
        self.n_cat_ = len(cat_cols) + sum(self.bag_widths_)
        self.n_cont_ = cont.shape[1] + len(self.nan_cols_)
        return self

    def transform(self, X: Any) -> np.ndarray:
        """Return float64 of shape (n_rows, n_cat_ + n_cont_): codes, then values."""
        check_is_fitted(self)
        return self.transform_frame(check_frame(self, X, reset=False))

    def transform_frame(
        self, X: pd.DataFrame, memo: dict[str, np.ndarray] | None = None
    ) -> np.ndarray:
        """Transform a DataFrame already checked against the fit columns (no checks).

        ``memo``: category keys already made for this frame (``keys_of``).
        """
        n_single = len(self.vocab_) - len(self.bag_widths_)
        codes = np.zeros((len(X), self.n_cat_), dtype=np.float64)
        for j, (col, vocab) in enumerate(list(self.vocab_.items())[:n_single]):
            keys = keys_of(X, col, memo)
            found = positions(vocab, keys)
            codes[:, j] = np.where(found >= 0, found + N_RESERVED, RARE)
            codes[pd.isna(keys), j] = MISSING
        start = n_single
        for col, width in zip(self.multi_cols, self.bag_widths_, strict=True):
            block = codes[:, start : start + width]
            items = item_lists(X[col], self.separators_[col]).explode().dropna()
            slot = items.groupby(level=0).cumcount().to_numpy()
            keep = slot < width
            found = positions(self.vocab_[col], items.to_numpy(dtype=object)[keep])
            rows = items.index.to_numpy()[keep]
            block[rows, slot[keep]] = np.where(found >= 0, found + N_RESERVED, RARE)
            start += width
        cont, nan = self._cont_values(X)
        with np.errstate(invalid="ignore"):  # NaN stays NaN
            cont = np.clip(self._scale(cont), *self.bounds_)
        flags = nan[:, [self._sources().index(c) for c in self.nan_cols_]]
        # Missing values, and columns whose fit data held no number, become 0.
        return np.hstack([codes, np.nan_to_num(cont, nan=0.0), flags])

    def feature_columns(self) -> tuple[list[str], list[str]]:
        """Return the input column of each code column, and of each float column."""
        singles = list(self.vocab_)[: len(self.vocab_) - len(self.bag_widths_)]
        bags = [
            c
            for c, w in zip(self.multi_cols, self.bag_widths_, strict=True)
            for _ in range(w)
        ]
        return [*singles, *bags], [*self._sources(), *self.nan_cols_]

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        check_is_fitted(self)
        singles = list(self.vocab_)[: len(self.vocab_) - len(self.bag_widths_)]
        bags = [
            f"{c}[{i}]"
            for c, w in zip(self.multi_cols, self.bag_widths_, strict=True)
            for i in range(w)
        ]
        dates = [f"{c}.{p}" for c, parts in self.date_parts_.items() for p in parts]
        names = [
            *singles,
            *bags,
            *self.cont_cols_,
            *dates,
            *(f"{c}_missing" for c in self.nan_cols_),
        ]
        return np.asarray(names, dtype=object)

    def _vocab(self, keys: np.ndarray) -> pd.Index:
        counts = pd.Series(keys).value_counts()  # most frequent first
        known = counts.index[counts >= self.min_frequency]
        return pd.Index(known[: self.max_categories])

    def _columns(self, X: pd.DataFrame) -> tuple[list[str], list[str], list[str]]:
        multi = set(self.multi_cols)
        dates = self.date_cols
        if dates is None:
            dates = [
                c
                for c in X.columns
                if pd.api.types.is_datetime64_any_dtype(X[c]) and c not in multi
            ]
        taken = multi | set(dates)
        numeric = {c: pd.api.types.is_numeric_dtype(X[c]) for c in X.columns}
        cat = self.cat_cols
        if cat is None:
            cat = [
                c
                for c in X.columns
                if c not in taken and (not numeric[c] or X[c].dtype == bool)
            ]
        cont = self.cont_cols
        if cont is None:
            cont = [c for c in X.columns if c not in taken | set(cat)]
        return list(cat), list(cont), list(dates)

    def _sources(self) -> list[str]:
        """Return the input column of each continuous feature (flags excluded)."""
        dates = [c for c, parts in self.date_parts_.items() for _ in parts]
        return [*self.cont_cols_, *dates]

    def _cont_values(self, X: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """Continuous features (NaN where missing) and each source column's NaNs."""
        cols = self.cont_cols_
        if all(_plain_numbers(X[c].dtype) for c in cols):
            values = np.empty((len(X), len(cols)))
            for j, c in enumerate(cols):
                values[:, j] = X[c].to_numpy(dtype=np.float64, na_value=np.nan)
            if not np.isfinite(values[~np.isnan(values)]).all():
                values = _numeric(X, cols)
        else:
            values = _numeric(X, cols)
        features, nan = [values], [np.isnan(values)]
        for col, parts in self.date_parts_.items():
            dates = date_values(X[col])
            every = date_parts(dates)
            features.append(np.stack([every[p] for p in parts], axis=1))
            nan.append(np.isnat(dates)[:, None])
        return np.hstack(features), np.hstack(nan)

    def _scale(self, cont: np.ndarray) -> np.ndarray:
        if isinstance(self.scaler_, StandardScaler) and cont.shape[1]:
            return (cont - self.scaler_.mean_) / self.scaler_.scale_  # no checks: fast
        if self.scaler_ is not None and cont.shape[1]:
            return self.scaler_.transform(cont)
        return cont

    def _make_scaler(self, n_rows: int) -> StandardScaler | QuantileTransformer | None:
        if self.scaling == "standard":
            return StandardScaler()
        if self.scaling == "quantile":
            n_quantiles = max(2, min(1000, n_rows))
            return QuantileTransformer(
                n_quantiles=n_quantiles, output_distribution="normal", random_state=0
            )
        if self.scaling is None:
            return None
        raise ValueError(
            f"scaling must be 'standard', 'quantile' or None, got {self.scaling!r}."
        )

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        tags.input_tags.string = True
        return tags


def _plain_numbers(dtype: Any) -> bool:
    """Tell whether a column's dtype holds numbers only (booleans are checked)."""
    types = pd.api.types
    return types.is_numeric_dtype(dtype) and not types.is_bool_dtype(dtype)


def _numeric(X: pd.DataFrame, cols: Sequence[str]) -> np.ndarray:
    values = [numeric_values(X[c]) for c in cols]
    return np.stack(values, axis=1).reshape(len(X), -1)


def _separator(s: pd.Series) -> str | None:
    """Return a multi-valued column's separator (strings: detected, else a comma)."""
    sample = s.dropna().iloc[:2000]
    if sample.map(lambda v: isinstance(v, str)).all():
        return list_separator(sample) or ","
    return None
