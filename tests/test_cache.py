"""FeatureCache: each distinct input of a frozen encoder encoded once, bounded."""

import torch
from torch import nn

from widemm.cache import FeatureCache, is_frozen


class Counting(nn.Module):
    """A frozen encoder that counts the rows it encodes."""

    output_dim = 2

    def __init__(self):
        super().__init__()
        self.layer = nn.Linear(3, 2).requires_grad_(False)
        self.rows = 0

    def forward(self, x):
        self.rows += len(x)
        return self.layer(x)


def test_each_distinct_row_is_encoded_once_and_results_keep_row_order():
    encoder, cache = Counting(), FeatureCache(batch_size=4, bf16=False)
    assert is_frozen(encoder)
    x = torch.arange(30.0).reshape(10, 3)
    first = cache("text_0", encoder, x)["embedding"]
    assert encoder.rows == 10
    again = cache("text_0", encoder, torch.cat([x.flip(0), x[:2]]))["embedding"]
    assert encoder.rows == 10  # nothing new to encode
    torch.testing.assert_close(again[:10], first.flip(0))
    with torch.no_grad():
        torch.testing.assert_close(first, encoder.layer(x))
    cache("text_1", encoder, x)  # another slot: its own entries
    assert encoder.rows == 20


def test_a_slot_keeps_at_most_max_rows_least_recently_used_dropped():
    encoder, cache = Counting(), FeatureCache(max_rows=5)
    x = torch.arange(30.0).reshape(10, 3)
    cache("s", encoder, x)
    assert len(cache.entries[("s", False)]) == 5
    cache("s", encoder, x[-5:])  # the newest five are still cached
    assert encoder.rows == 10
    cache("s", encoder, x[:1])
    assert encoder.rows == 11


def test_bf16_encoding_keeps_minilm_embeddings_within_cosine_0_999():
    """Where the CPU runs bf16 in hardware the cache encodes with a bf16 copy of
    the weights (1.9x as fast here); the embeddings stay within cosine 0.999 of
    float32, and the encoder itself keeps its float32 weights."""
    from widemm.execution import native_bf16
    from widemm.models.text import HFTextEncoder
    from widemm.preprocessing import TextPreprocessor

    texts = [
        "The fit is true to size and the fabric feels soft.",
        "Returned it: the seams came apart after one wash, very disappointed.",
        "ok",
        "Lovely colour, runs a little small in the shoulders; order one size up.",
    ] * 4
    import pandas as pd

    pre = TextPreprocessor(tokenizer="sentence-transformers/all-MiniLM-L6-v2")
    tokens = pre.fit_transform(pd.DataFrame({"t": texts}))["t"]
    x = {
        "input_ids": torch.from_numpy(tokens.input_ids),
        "attention_mask": torch.from_numpy(tokens.attention_mask),
    }
    encoder = HFTextEncoder("sentence-transformers/all-MiniLM-L6-v2").eval()
    exact = FeatureCache(bf16=False)("t", encoder, x)["embedding"]
    fast = FeatureCache(bf16=True)("t", encoder, x)["embedding"]
    assert not torch.equal(exact, fast)  # bf16 did run
    assert nn.functional.cosine_similarity(exact, fast).min() >= 0.999
    assert FeatureCache().bf16 == native_bf16(torch.device("cpu"))
    assert all(p.dtype == torch.float32 for p in encoder.parameters())


def test_bf16_copy_is_made_once_and_again_when_the_weights_change():
    """The bf16 copy is reused across calls (a served row must not pay for a
    copy of the backbone) and remade when the encoder's weights change."""
    encoder = nn.Sequential(nn.Embedding(5, 2), nn.Flatten())  # reads token ids
    encoder.bf16_safe = True
    cache = FeatureCache(bf16=True)
    x = torch.tensor([[1, 2, 3], [0, 4, 4]])
    first = cache("s", encoder, x)["embedding"]
    copied = cache._bf16_copies[encoder][1]
    assert next(copied.parameters()).dtype == torch.bfloat16
    cache("s2", encoder, x)
    assert cache._bf16_copies[encoder][1] is copied
    with torch.no_grad():
        encoder[0].weight.add_(1.0)
    second = cache("s3", encoder, x)["embedding"]
    assert cache._bf16_copies[encoder][1] is not copied
    assert torch.allclose(second, first + 1.0, atol=0.05)
