import pytest
import torch

from widemm.models import (
    FUSIONS,
    IMAGE_MODELS,
    TAB_MODELS,
    TEXT_MODELS,
    Wide,
    WideDeep,
    make_fusion,
    make_image_model,
    make_tab_model,
    make_text_model,
)

MINILM = "sentence-transformers/all-MiniLM-L6-v2"


def assert_every_parameter_learns(module, out):
    """timm's rule: every trainable parameter gets a non-zero gradient.

    The objective is a seeded random projection of the output: ``out.sum()`` can be
    constant (after a LayerNorm), making its gradients rounding noise.
    """
    g = torch.Generator().manual_seed(0)
    (out * torch.randn(out.shape, generator=g)).sum().backward()
    dead = [
        name
        for name, p in module.named_parameters()
        if p.requires_grad and (p.grad is None or not p.grad.abs().sum() > 0)
    ]
    assert not dead, f"parameters with no gradient: {dead}"


def tab_batch(n=6, cards=(4, 7), n_cont=3):
    g = torch.Generator().manual_seed(0)
    cat = torch.zeros(n, len(cards), dtype=torch.long)
    for j, c in enumerate(cards):
        cat[:, j] = torch.randint(0, c, (n,), generator=g)
    return {"cat": cat, "cont": torch.randn(n, n_cont, generator=g)}


@pytest.mark.parametrize("name", sorted(TAB_MODELS))
@pytest.mark.parametrize(("cards", "n_cont"), [((4, 7), 3), ((4,), 0), ((), 2)])
def test_tab_model_contract(name, cards, n_cont):
    torch.manual_seed(0)
    model = make_tab_model(name, list(cards), [3] * len(cards), n_cont).eval()
    x = tab_batch(n=16, cards=cards, n_cont=n_cont)
    out = model(x)
    members = getattr(model, "k", None)  # an ensemble (TabM): (B, k, dim)
    assert out.shape == (16, *([members] if members else []), model.output_dim)
    p = torch.randperm(16)
    torch.testing.assert_close(model({k: v[p] for k, v in x.items()}), out[p])
    assert_every_parameter_learns(model, out)


def tokens(n=6, length=10, vocab=40):
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(2, vocab, (n, length), generator=g)
    lengths = torch.randint(1, length + 1, (n,), generator=g)
    mask = (torch.arange(length)[None, :] < lengths[:, None]).long()
    return {"input_ids": ids * mask, "attention_mask": mask}


def pixels(n=6, size=32):
    return {"pixels": torch.randn(n, 3, size, size, generator=torch.Generator())}


ENCODERS = {
    **{f"text:{k}": (lambda k=k: make_text_model(k, 40), tokens) for k in TEXT_MODELS},
    **{f"image:{k}": (lambda k=k: make_image_model(k), pixels) for k in IMAGE_MODELS},
    "image:resnet18": (lambda: make_image_model("resnet18"), pixels),
    "text:minilm-unfrozen": (lambda: make_text_model(MINILM, 0, freeze=False), tokens),
}


@pytest.mark.parametrize("name", sorted(ENCODERS))
def test_encoder_contract(name):
    torch.manual_seed(0)
    make, batch = ENCODERS[name]
    encoder, x = make(), batch()
    out = encoder.train()(x)
    assert out.shape == (6, encoder.output_dim)
    assert_every_parameter_learns(encoder, out)
    encoder.eval()
    p = torch.randperm(6)
    with torch.no_grad():
        torch.testing.assert_close(
            encoder({k: v[p] for k, v in x.items()}), encoder(x)[p]
        )


def test_make_tab_model_unknown_name_suggests():
    with pytest.raises(ValueError, match="Did you mean 'mlp'"):
        make_tab_model("mpl", [3], [2], 1)


@pytest.mark.parametrize("name", sorted(FUSIONS))
def test_fusion_contract(name):
    torch.manual_seed(0)
    dims = {"tab": 8, "text_0": 12, "image_0": 16}
    fusion = make_fusion(name, dims).eval()
    emb = {k: torch.randn(5, d, requires_grad=True) for k, d in dims.items()}
    assert fusion.slots == sorted(dims)
    mask = {k: torch.arange(5) != i for i, k in enumerate(sorted(dims))}  # one absent
    out = fusion(emb, mask)
    assert out.shape == (5, fusion.output_dim)
    assert_every_parameter_learns(fusion, out)
    assert all(e.grad.abs().sum() > 0 for e in emb.values())  # every input counts
    p = torch.randperm(5)
    y = fusion({k: v[p] for k, v in emb.items()}, {k: v[p] for k, v in mask.items()})
    torch.testing.assert_close(y, out[p])  # rows do not leak into each other


@pytest.mark.parametrize("name", sorted(FUSIONS))
def test_fusion_absent_rows_change_only_those_rows(name):
    dims = {"tab": 4, "text_0": 6, "image_0": 5}
    fusion = make_fusion(name, dims).eval()
    with torch.no_grad():
        for p in fusion.absent.values():
            p.fill_(3.0)
    emb = {k: torch.randn(4, d) for k, d in dims.items()}
    present = {"text_0": torch.tensor([True, False, True, False])}
    out, full = fusion(emb, present), fusion(emb, {})
    torch.testing.assert_close(out[[0, 2]], full[[0, 2]])
    assert not torch.allclose(out[[1, 3]], full[[1, 3]])
    changed = {**emb, "text_0": emb["text_0"] + 1.0}  # absent rows ignore their input
    torch.testing.assert_close(fusion(changed, present)[[1, 3]], out[[1, 3]])


@pytest.mark.parametrize("name", sorted(FUSIONS))
def test_modality_dropout_only_while_training(name):
    dims = {"tab": 4, "text_0": 6}
    fusion = make_fusion(name, dims, modality_dropout=1.0)
    emb = {k: torch.randn(3, d) for k, d in dims.items()}
    absent = {k: torch.zeros(3, dtype=torch.bool) for k in dims}
    fusion.eval()
    assert not torch.allclose(fusion(emb, {}), fusion(emb, absent))
    fusion.train()
    for module in fusion.modules():  # compare without dropout noise
        if isinstance(module, torch.nn.Dropout):
            module.p = 0.0
        if isinstance(module, torch.nn.MultiheadAttention):
            module.dropout = 0.0
    torch.testing.assert_close(fusion(emb, {}), fusion(emb, absent))


def test_film_condition_must_be_a_slot():
    with pytest.raises(ValueError, match="condition 'text_9'"):
        make_fusion("film", {"tab": 3, "text_0": 4}, condition="text_9")


def test_wide_is_a_sum_of_weights():
    wide = Wide(n_indices=10, n_outputs=2)
    with torch.no_grad():
        wide.linear.weight.copy_(torch.arange(20.0).view(10, 2))
        wide.bias.fill_(0.5)
    out = wide(torch.tensor([[1, 4], [0, 9]]))
    torch.testing.assert_close(out, torch.tensor([[10.5, 12.5], [18.5, 20.5]]))


def test_widedeep_adds_wide_logits_to_head():
    tab = make_tab_model("mlp", [4, 7], [3, 3], 3)
    fusion = make_fusion("concat", {"tab": tab.output_dim})
    wide = Wide(10, 1)
    model = WideDeep({"tab": tab}, fusion, {"y": 1}, wide).eval()
    batch = {"tab": tab_batch(), "wide": torch.randint(0, 10, (6, 2))}
    deep_only = model.heads["y"](fusion({"tab": tab(batch["tab"])}, {}))
    torch.testing.assert_close(model(batch), deep_only + wide(batch["wide"]))


def test_an_ensemble_trains_each_member_and_predicts_their_mean():
    from widemm.heads import Head
    from widemm.models import WideDeep, make_fusion
    from widemm.training.objective import Objective

    torch.manual_seed(0)
    tab = make_tab_model("tabm", [4, 7], [3, 3], 3, k=4, hidden_dims=(8, 8), dropout=0)
    model = WideDeep({"tab": tab}, make_fusion("concat", {"tab": 8}), {"y": 1})
    x = {"tab": tab_batch(n=5)}
    y = torch.tensor([0.0, 1.0, 1.0, 0.0, 1.0])
    model.train()
    members = model(x)
    assert members.shape == (5, 4, 1)
    objective = Objective([Head("y", "binary")])
    each = [objective(members[:, i], y) for i in range(4)]
    torch.testing.assert_close(objective(members, y), torch.stack(each).mean())
    assert members.std(1).min() > 0  # the members differ
    for module in model.modules():  # training mode, without dropout anywhere
        if isinstance(module, torch.nn.Dropout):
            module.eval()
    every = model(x)
    torch.testing.assert_close(model.eval()(x), every.mean(1))


@pytest.mark.default_tab_model
def test_auto_tab_model_is_tabm_between_the_row_bounds(adult_xy):
    from widemm import WideDeepClassifier
    from widemm.models.tabular import TabM, TabMLP

    X, y = adult_xy
    for rows, kind in ((2500, TabM), (1500, TabMLP)):
        model = WideDeepClassifier(max_epochs=1, random_state=0, trees=False)
        model.fit(X.iloc[:rows], y.iloc[:rows])
        assert type(model.model_.encoders["tab"]) is kind
        assert model.predict_proba(X.iloc[:5]).shape == (5, 2)
    beside = WideDeepClassifier(max_epochs=1, random_state=0).fit(X[:2500], y[:2500])
    assert type(beside.model_.encoders["tab"]) is TabMLP  # beside the trees


def token_inputs(n=5, dims=(("image_0", 16, 9), ("tab", 8, 1), ("text_0", 12, 4))):
    g = torch.Generator().manual_seed(0)
    tokens = {k: torch.randn(n, t, d, generator=g) for k, d, t in dims}
    masks = {k: torch.ones(n, t, dtype=torch.bool) for k, _, t in dims}
    masks["text_0"][:, 2:] = False  # padding segments
    masks["text_0"][1] = False  # row 1 has no text
    return tokens, masks


def test_cross_attention_masks_and_keeps_rows_apart():
    torch.manual_seed(0)
    tokens, masks = token_inputs()
    fusion = make_fusion("cross_attention", {k: t.shape[-1] for k, t in tokens.items()})
    fusion.eval()
    out = fusion(tokens, masks)
    assert out.shape == (5, fusion.output_dim)
    assert out.isfinite().all()
    p = torch.randperm(5)
    moved = fusion(
        {k: t[p] for k, t in tokens.items()}, {k: m[p] for k, m in masks.items()}
    )
    torch.testing.assert_close(moved, out[p])
    changed = dict(tokens, text_0=tokens["text_0"].clone())
    changed["text_0"][:, 2:] += 5.0  # padding segments
    changed["text_0"][1] += 5.0  # the absent text
    torch.testing.assert_close(fusion(changed, masks), out)
    changed["text_0"][0, 0] += 5.0  # a present segment
    assert not torch.allclose(fusion(changed, masks)[0], out[0])
    torch.testing.assert_close(fusion(changed, masks)[1:], out[1:])


def test_cross_attention_tokens_attend_only_to_other_slots():
    """A text segment's first-layer state reads the tabular token, not the other
    segments; the CLS output reads them all."""
    torch.manual_seed(0)
    fusion = make_fusion("cross_attention", {"text_0": 6, "tab": 6}).eval()
    text = torch.randn(3, 4, 6, requires_grad=True)
    tab = torch.randn(3, 6, requires_grad=True)
    states = []
    fusion.blocks[0].register_forward_hook(lambda _m, _i, out: states.append(out))
    out = fusion({"text_0": text, "tab": tab}, {})
    first_segment = states[0][:, 2]  # order: CLS, tab, the 4 text segments
    grads = torch.autograd.grad(first_segment.sum(), (text, tab), retain_graph=True)
    assert grads[0][:, 1:].abs().sum() == 0  # not the other segments
    assert grads[0][:, 0].abs().sum() > 0
    assert grads[1].abs().sum() > 0
    weights = torch.randn(out.shape, generator=torch.Generator().manual_seed(0))
    text_grad = torch.autograd.grad((out * weights).sum(), text)[0]  # not a sum:
    # a LayerNorm's output sums to a constant
    assert (text_grad.abs().sum((0, 2)) > 0).all()


TOKENIZED = {
    "text:bag": (lambda: make_text_model("bag", 40, n_tokens=3), tokens),
    "text:minilm": (lambda: make_text_model(MINILM, 0, n_tokens=3), tokens),
    "image:small_cnn": (lambda: make_image_model("small_cnn", token_grid=2), pixels),
    "image:resnet18": (lambda: make_image_model("resnet18", token_grid=2), pixels),
    "image:vgg11": (lambda: make_image_model("vgg11"), lambda: pixels(size=32)),
}


@pytest.mark.parametrize("name", sorted(TOKENIZED))
def test_encoder_tokens(name):
    torch.manual_seed(0)
    make, batch = TOKENIZED[name]
    encoder, x = make().eval(), batch()
    with torch.no_grad():
        states, mask = encoder.tokens(x)
        pooled = encoder(x)
    expected = {"image:vgg11": 1}.get(name, 4 if name.startswith("image") else 3)
    assert states.shape == (6, expected, encoder.output_dim)
    assert mask.shape == (6, expected)
    assert mask.dtype == torch.bool
    if name.startswith("image") and name != "image:vgg11":  # cells average to the pool
        torch.testing.assert_close(states.mean(1), pooled, atol=1e-4, rtol=1e-4)
    if name == "text:minilm":  # segments weighted by their tokens average to it
        lengths = x["attention_mask"].sum(1)
        sizes = torch.stack(
            [
                torch.bincount(torch.arange(n) * min(3, n) // n, minlength=3)
                for n in lengths.tolist()
            ]
        )
        weighted = (states * sizes[..., None]).sum(1) / lengths[:, None]
        torch.testing.assert_close(weighted, pooled, atol=1e-4, rtol=1e-4)
        assert (mask.sum(1) == lengths.clamp(max=3)).all()


@pytest.mark.parametrize("p", [0.1, 0.5])
def test_fast_dropout_drops_at_its_rate_and_keeps_the_mean(p):
    from widemm.models.layers import FastDropout

    x = torch.full((512, 1024), 2.0, requires_grad=True)
    torch.manual_seed(0)
    y = FastDropout(p)(x)
    dropped = (y == 0).float().mean().item()
    assert abs(dropped - p) < 0.005  # 524k draws: sd 0.0007
    assert abs(y.mean().item() - 2.0) < 0.02
    y.sum().backward()  # the gradient is the mask, scaled as the values
    torch.testing.assert_close(x.grad, y.detach() / 2.0)
    torch.manual_seed(0)
    torch.testing.assert_close(FastDropout(p)(x), y)  # torch's generator repeats it
    assert torch.equal(FastDropout(p).eval()(x), x)


def test_widedeep_makes_every_dropout_fast():
    from widemm.models.layers import FastDropout

    tab = make_tab_model("tabm", [4, 7], [3, 3], 3, k=4, hidden_dims=(8, 8))
    model = WideDeep({"tab": tab}, make_fusion("concat", {"tab": 8}), {"y": 1})
    rates = [m.p for m in model.modules() if isinstance(m, torch.nn.Dropout)]
    assert len(rates) > 1  # tabm's own dropouts included
    assert all(p > 0 for p in rates)
    assert all(
        type(m) is FastDropout
        for m in model.modules()
        if isinstance(m, torch.nn.Dropout)
    )
