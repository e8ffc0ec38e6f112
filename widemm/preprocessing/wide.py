"""One-hot indices of categorical and crossed columns for the wide (linear) part."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Self

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from widemm.validation import check_frame, keys_of, positions

CROSS_SEP = "_x_"
N_RESERVED = 2  # per input: index 0 = unseen value, 1 = missing value


class WidePreprocessor(TransformerMixin, BaseEstimator):
    """Map categorical and crossed columns to one index space for a linear model.

    Each input (a column or a cross of columns) owns a block of indices: the first
    is for values unseen in fit, the second for missing values, then one per known
    value. Unseen and missing values are therefore handled, never errors.

    Parameters
    ----------
    cols : list of str, optional
        Categorical columns; by default every column of X that is not numeric.
    crossed_cols : list of tuples of str
        Crosses, e.g. ``[("education", "occupation")]``; a cross's value is the
        combination of its columns' values (missing if any is missing).
    max_categories : int
        Known values kept per input, the most frequent; the others count as
        unseen. Bounds the index space of high-cardinality columns and crosses.

    Attributes
    ----------
    vocab_ : dict of str to pandas.Index
        Known values per input (a column or ``"a_x_b"`` for a cross), in index order.
    offsets_ : ndarray of shape (n_inputs,)
        First index of each input's block.
    n_indices_ : int
        Size of the index space.

    Examples
    --------
    >>> import pandas as pd
    >>> X = pd.DataFrame({"city": ["a", "b", None], "job": ["x", "x", "y"]})
    >>> WidePreprocessor(crossed_cols=[("city", "job")]).fit(X).transform(X)
    array([[ 2,  6,  9],
           [ 3,  6, 10],
           [ 1,  7,  8]])
    """

    def __init__(
        self,
        cols: Sequence[str] | None = None,
        crossed_cols: Sequence[Sequence[str]] = (),
        *,
        max_categories: int = 10_000,
    ) -> None:
        self.cols = cols
        self.crossed_cols = crossed_cols
        self.max_categories = max_categories

    def fit(self, X: Any, y: Any = None) -> Self:
        X = check_frame(self, X, reset=True)
        inputs = self._inputs(X)
        self.vocab_ = {k: self._vocab(v[~pd.isna(v)]) for k, v in inputs.items()}
        sizes = np.array([N_RESERVED + len(v) for v in self.vocab_.values()])
        self.offsets_ = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
        self.n_indices_ = int(sizes.sum())
        return self

    def transform(self, X: Any) -> np.ndarray:
        """Return int64 indices of shape (n_rows, n_inputs)."""
        check_is_fitted(self)
        return self.transform_frame(check_frame(self, X, reset=False))

    def transform_frame(
        self, X: pd.DataFrame, memo: dict[str, np.ndarray] | None = None
    ) -> np.ndarray:
        """Transform a DataFrame already checked against the fit columns (no checks).

        ``memo``: category keys already made for this frame (``keys_of``).
        """
        inputs = self._inputs(X, memo).values()
        codes = np.empty((len(X), len(self.vocab_)), dtype=np.int64)
        for j, (vocab, keys) in enumerate(
            zip(self.vocab_.values(), inputs, strict=True)
        ):
            found = positions(vocab, keys)
            codes[:, j] = np.where(found >= 0, found + N_RESERVED, pd.isna(keys))
        return codes + self.offsets_

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        check_is_fitted(self)
        return np.asarray(list(self.vocab_), dtype=object)

    def _vocab(self, keys: np.ndarray) -> pd.Index:
        """Values in order of first appearance; the most frequent when capped."""
        unique = pd.unique(keys)
        if len(unique) <= self.max_categories:
            return pd.Index(unique)
        counts = pd.Series(keys).value_counts(sort=True)
        return pd.Index(counts.index[: self.max_categories])

    def _inputs(
        self, X: pd.DataFrame, memo: dict[str, np.ndarray] | None = None
    ) -> dict[str, np.ndarray]:
        cols = self.cols
        if cols is None:
            cols = [c for c in X.columns if not pd.api.types.is_numeric_dtype(X[c])]
        inputs = {str(c): keys_of(X, c, memo) for c in cols}
        for cross in self.crossed_cols:
            parts = [keys_of(X, c, memo) for c in cross]
            missing = np.logical_or.reduce([pd.isna(p) for p in parts])
            joined = parts[0]
            for part in parts[1:]:
                joined = (
                    np.where(missing, "", joined) + "\x1f" + np.where(missing, "", part)
                )
            joined[missing] = None  # a cross with a missing part is missing
            inputs[CROSS_SEP.join(map(str, cross))] = joined
        return inputs

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        tags.input_tags.string = True
        return tags
