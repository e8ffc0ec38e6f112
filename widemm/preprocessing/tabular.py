"""Categorical codes and scaled continuous values for the deep tabular models."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal, Self

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.preprocessing import QuantileTransformer, StandardScaler
from sklearn.utils.validation import check_is_fitted

from widemm.validation import (
    category_keys,
    check_frame,
    keys_of,
    numeric_values,
    positions,
)

MISSING, RARE = 0, 1  # reserved codes; known values start at 2
N_RESERVED = 2


def embed_dim(cardinality: int, max_dim: int) -> int:
    """Embedding size rule of thumb (fast.ai): 1.6 * cardinality ** 0.56, capped."""
    return int(min(max_dim, round(1.6 * cardinality**0.56)))


class TabPreprocessor(TransformerMixin, BaseEstimator):
    """Encode categorical columns as integer codes and scale continuous columns.

    Categorical codes: 0 = missing, 1 = rare (seen fewer than ``min_frequency``
    times in fit) or unseen, 2.. = known values, most frequent first. Continuous
    values are scaled, missing values set to 0 (the mean after standard scaling)
    and, for columns with missing values in fit, flagged in an extra 0/1 column.

    Parameters
    ----------
    cat_cols, cont_cols : list of str, optional
        By default, non-numeric columns are categorical and numeric ones continuous.
    scaling : {"standard", "quantile", None}
        ``"quantile"`` maps each continuous column to a normal distribution through
        its quantiles, robust to heavy tails.
    min_frequency : int
        Categorical values seen fewer times share the "rare" code.
    max_embed_dim : int
        Cap of the embedding size rule.

    Attributes
    ----------
    vocab_ : dict of str to pandas.Index
        Known values of each categorical column; code = position + 2.
    cardinalities_ : list of int
        Number of codes per categorical column (reserved codes included).
    embed_dims_ : list of int
        Suggested embedding size per categorical column.
    scaler_ : sklearn transformer or None
        Fitted scaler of the continuous columns.
    nan_cols_ : list of str
        Continuous columns that get a missing-value indicator.
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
        *,
        scaling: Literal["standard", "quantile"] | None = "standard",
        min_frequency: int = 5,
        max_embed_dim: int = 32,
    ) -> None:
        self.cat_cols = cat_cols
        self.cont_cols = cont_cols
        self.scaling = scaling
        self.min_frequency = min_frequency
        self.max_embed_dim = max_embed_dim

    def fit(self, X: Any, y: Any = None) -> Self:
        X = check_frame(self, X, reset=True)
        cat_cols, cont_cols = self._columns(X)
        self.vocab_ = {}
        for col in cat_cols:
            counts = pd.Series(
                category_keys(X[col])
            ).value_counts()  # most frequent first
            self.vocab_[col] = pd.Index(counts.index[counts >= self.min_frequency])
        self.cardinalities_ = [N_RESERVED + len(v) for v in self.vocab_.values()]
        self.embed_dims_ = [
            embed_dim(n, self.max_embed_dim) for n in self.cardinalities_
        ]
        cont = self._cont_values(X, cont_cols)
        self.nan_cols_ = [
            c for c, nan in zip(cont_cols, np.isnan(cont).any(0), strict=True) if nan
        ]
        self.scaler_ = self._make_scaler(len(X))
        if self.scaler_ is not None and cont.shape[1]:
            self.scaler_.fit(cont)
        self.cont_cols_ = list(cont_cols)
        self.n_cat_ = len(cat_cols)
        self.n_cont_ = len(cont_cols) + len(self.nan_cols_)
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
        codes = np.empty((len(X), self.n_cat_), dtype=np.float64)
        for j, (col, vocab) in enumerate(self.vocab_.items()):
            keys = keys_of(X, col, memo)
            found = positions(vocab, keys)
            codes[:, j] = np.where(found >= 0, found + N_RESERVED, RARE)
            codes[pd.isna(keys), j] = MISSING
        cont = self._cont_values(X, self.cont_cols_)
        nan = np.isnan(cont)
        if isinstance(self.scaler_, StandardScaler) and cont.shape[1]:
            cont = (cont - self.scaler_.mean_) / self.scaler_.scale_  # no checks: fast
        elif self.scaler_ is not None and cont.shape[1]:
            cont = self.scaler_.transform(cont)
        flags = nan[:, [self.cont_cols_.index(c) for c in self.nan_cols_]]
        # Missing values, and columns whose fit data held no number, become 0.
        return np.hstack([codes, np.nan_to_num(cont, nan=0.0), flags])

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        check_is_fitted(self)
        names = [
            *self.vocab_,
            *self.cont_cols_,
            *(f"{c}_missing" for c in self.nan_cols_),
        ]
        return np.asarray(names, dtype=object)

    def _columns(self, X: pd.DataFrame) -> tuple[list[str], list[str]]:
        numeric = [pd.api.types.is_numeric_dtype(X[c]) for c in X.columns]
        cat = self.cat_cols
        if cat is None:
            cat = [
                c
                for c, num in zip(X.columns, numeric, strict=True)
                if not num or X[c].dtype == bool
            ]
        cont = self.cont_cols
        if cont is None:
            cont = [c for c in X.columns if c not in set(cat)]
        return list(cat), list(cont)

    @staticmethod
    def _cont_values(X: pd.DataFrame, cols: Sequence[str]) -> np.ndarray:
        if all(pd.api.types.is_numeric_dtype(X[c].dtype) for c in cols):
            values = np.empty((len(X), len(cols)))
            for j, c in enumerate(cols):
                values[:, j] = X[c].to_numpy(dtype=np.float64, na_value=np.nan)
            if np.isfinite(values[~np.isnan(values)]).all():
                return values
        return np.stack([numeric_values(X[c]) for c in cols], axis=1).reshape(
            len(X), -1
        )

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
