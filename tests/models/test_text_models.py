import pytest
import torch

from widemm.cache import FeatureCache
from widemm.models import BagEncoder, HFTextEncoder, make_text_model
from widemm.models.layers import param_groups

MINILM = "sentence-transformers/all-MiniLM-L6-v2"


@pytest.fixture(scope="module")
def minilm():
    return HFTextEncoder(MINILM)


def tokens(n=4, length=12, vocab=50, seed=0):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(2, vocab, (n, length), generator=g)
    lengths = torch.randint(1, length + 1, (n,), generator=g)
    mask = (torch.arange(length)[None, :] < lengths[:, None]).long()
    return {"input_ids": ids * mask, "attention_mask": mask}


def test_bag_encoder_contract_and_padding_is_ignored():
    enc = BagEncoder(vocab_size=50, embed_dim=8)
    x = tokens()
    out = enc(x)
    assert out.shape == (4, enc.output_dim)
    padded = {
        k: torch.cat([v, torch.zeros(4, 5, dtype=v.dtype)], 1) for k, v in x.items()
    }
    torch.testing.assert_close(enc(padded), out)
    out.sum().backward()
    assert enc.embedding.weight.grad.abs().sum() > 0


def test_hf_encoder_frozen_pooled_and_padding_invariant(minilm):
    assert minilm.output_dim == 4 * 384  # the last 4 layers, pooled and concatenated
    assert minilm.frozen
    assert not any(p.requires_grad for p in minilm.parameters())
    x = tokens(vocab=1000)
    x["input_ids"][:, 0] = 101
    minilm.train()
    assert not minilm.backbone.training  # frozen backbone never in train mode
    out = minilm(x)
    assert out.shape == (4, 4 * 384)
    padded = {
        k: torch.cat([v, torch.zeros(4, 20, dtype=v.dtype)], 1) for k, v in x.items()
    }
    torch.testing.assert_close(minilm(padded), out, atol=1e-5, rtol=1e-5)
    minilm.pooling = "cls"
    assert not torch.allclose(minilm(x), out)
    minilm.pooling = "mean"


def test_hf_encoder_unfreezes_top_layers_with_lower_learning_rate():
    enc = make_text_model(MINILM, 0, unfreeze_top_n=2, lr_scale=0.1)
    trainable = {n.split(".")[3] for n, p in enc.named_parameters() if p.requires_grad}
    assert trainable == {"4", "5"}  # backbone.encoder.layer.{4,5}
    assert not enc.frozen
    groups = param_groups(
        torch.nn.ModuleDict({"text": enc, "head": torch.nn.Linear(2, 1)}), 1e-3
    )
    lrs = sorted(g["lr"] for g in groups)
    assert lrs == pytest.approx([1e-4, 1e-3])


def test_feature_cache_encodes_each_distinct_row_once(minilm):
    calls = []
    minilm.register_forward_hook(lambda m, i, o: calls.append(len(o)))
    cache = FeatureCache(batch_size=3, bf16=False)  # exact: float32
    x = tokens(n=6, vocab=1000)
    first = cache("text_0", minilm, x)["embedding"]
    assert sum(calls) == 6
    more = {
        k: torch.cat([v[[1, 4]], tokens(n=2, vocab=1000, seed=9)[k]])
        for k, v in x.items()
    }
    again = cache("text_0", minilm, more)["embedding"]
    assert sum(calls) == 6 + 2  # only the two unseen rows were encoded
    torch.testing.assert_close(again[:2], first[[1, 4]])
    with torch.inference_mode():
        direct = minilm(x)
    torch.testing.assert_close(first, direct, atol=1e-5, rtol=1e-5)
