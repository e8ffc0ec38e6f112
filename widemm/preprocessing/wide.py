"""One-hot indices of categorical and crossed columns for the wide (linear) part.

Text columns may join too, as the word and word-pair n-grams each row holds: the
wide part is then also a linear bag-of-n-grams model, the classic strong text
baseline, next to the deep text encoder.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Self

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from widemm.preprocessing.text import text_list
from widemm.validation import check_frame, keys_of, positions

CROSS_SEP = "_x_"
N_RESERVED = 2  # per input: index 0 = unseen value, 1 = missing value
MAX_NGRAMS_PER_ROW = 256  # index columns of a text column at most (2 KB a row)


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
    text_cols : list of str
        Text columns whose n-grams (words and word pairs, lowercased, seen in 2+
        rows) become indices: one per n-gram a row holds, as many index columns
        as 99% of rows need, at most 256 (a longer text keeps its rarest known
        n-grams, the most specific).
    max_ngrams : int
        N-grams kept per text column, the most frequent.

    Attributes
    ----------
    vocab_ : dict of str to pandas.Index
        Known values per input (a column or ``"a_x_b"`` for a cross), in index order.
    ngrams_ : dict of str to pandas.Index
        Known n-grams per text column, most frequent first.
    widths_ : dict of str to int
        Index columns per text column.
    offsets_ : ndarray of shape (n_inputs + n_text,)
        First index of each input's block, then of each text column's.
    n_indices_ : int
        Size of the index space. With text columns its last index is padding
        (rows with fewer n-grams than columns), whose weight stays 0.
    inputs_ : list of str
        The input (column or cross) of each index column ``transform`` returns.

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
        text_cols: Sequence[str] = (),
        max_ngrams: int = 20_000,
    ) -> None:
        self.cols = cols
        self.crossed_cols = crossed_cols
        self.max_categories = max_categories
        self.text_cols = text_cols
        self.max_ngrams = max_ngrams

    def fit(self, X: Any, y: Any = None) -> Self:
        X = check_frame(self, X, reset=True)
        inputs = self._inputs(X)
        self.vocab_ = {k: self._vocab(v[~pd.isna(v)]) for k, v in inputs.items()}
        self.ngrams_, self.widths_ = {}, {}
        for col in map(str, self.text_cols):
            self.ngrams_[col], held = _frequent_ngrams(X[col], self.max_ngrams)
            width = int(np.percentile(np.diff(held.indptr), 99))
            self.widths_[col] = int(np.clip(width, 1, MAX_NGRAMS_PER_ROW))
        sizes = np.array(
            [N_RESERVED + len(v) for v in self.vocab_.values()]
            + [len(v) for v in self.ngrams_.values()]
        )
        self.offsets_ = np.cumsum([0, *sizes])[:-1].astype(np.int64)
        self.n_indices_ = int(sizes.sum()) + bool(self.ngrams_)  # + padding
        self.inputs_ = list(self.vocab_) + [
            col for col, w in self.widths_.items() for _ in range(w)
        ]
        return self

    @property
    def padding_idx(self) -> int | None:
        """The padding index (text columns' unused index columns), if any."""
        check_is_fitted(self)
        return self.n_indices_ - 1 if self.ngrams_ else None

    def transform(self, X: Any) -> np.ndarray:
        """Return int64 indices of shape (n_rows, len(inputs_))."""
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
        parts = [codes + self.offsets_[: len(self.vocab_)]]
        starts = self.offsets_[len(self.vocab_) :]
        for (col, ngrams), start in zip(self.ngrams_.items(), starts, strict=True):
            held = _held(ngrams, X[col])
            width, padding = self.widths_[col], self.n_indices_ - 1
            parts.append(_last_ids(held, width, start, padding))
        return np.concatenate(parts, axis=1)

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        check_is_fitted(self)
        return np.asarray(self.inputs_, dtype=object)

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
        tags.transformer_tags.preserves_dtype = []  # int64 indices, whatever X
        return tags


def _counter(**kwargs: Any) -> Any:
    """Return the n-gram counter: lowercased words and word pairs, present or not."""
    from sklearn.feature_extraction.text import CountVectorizer

    return CountVectorizer(ngram_range=(1, 2), binary=True, **kwargs)


def _frequent_ngrams(s: pd.Series, most: int) -> tuple[pd.Index, Any]:
    """Return the n-grams in 2+ rows, the ``most`` frequent first, and ``_held``."""
    counter = _counter(min_df=2)
    try:
        counts = counter.fit_transform(text_list(s))
    except ValueError:  # no n-gram in 2 rows
        none = pd.Index([], dtype=object)
        return none, _held(none, s)
    frequency = np.asarray(counts.sum(0)).ravel()
    top = np.argsort(-frequency, kind="stable")[:most]
    held = counts[:, top].tocsr()
    held.sort_indices()
    return pd.Index(counter.get_feature_names_out()[top]), held


def _held(ngrams: pd.Index, s: pd.Series) -> Any:
    """CSR matrix of the known n-grams each row holds, most frequent first."""
    from scipy import sparse

    if not len(ngrams):
        return sparse.csr_matrix((len(s), 0), dtype=np.int64)
    held = _counter(vocabulary=ngrams).transform(text_list(s))
    held.sort_indices()  # ids follow frequency
    return held


def _last_ids(held: Any, width: int, start: int, padding: int) -> np.ndarray:
    """Each row's last (rarest) ``width`` ids + ``start``, rarest first, padded."""
    n_rows = held.shape[0]
    kept = np.minimum(np.diff(held.indptr), width)
    rows = np.repeat(np.arange(n_rows), kept)
    slot = np.arange(len(rows)) - np.repeat(np.cumsum(kept) - kept, kept)
    source = np.repeat(held.indptr[1:], kept) - 1 - slot
    block = np.full((n_rows, width), padding, dtype=np.int64)
    block[rows, slot] = held.indices[source] + start
    return block
