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
    encoder, cache = Counting(), FeatureCache(batch_size=4)
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
