"""The contrastive loss against its closed form, the views it contrasts."""

import math

import numpy as np
import pytest
import torch

from widemm.training.contrastive import ContrastiveLoss, corrupt


def closed_form(a: np.ndarray, b: np.ndarray, scale: float) -> float:
    """(CE(s·âb̂ᵀ, I) + CE(s·b̂âᵀ, I)) / 2, written out in numpy."""
    a = a / np.linalg.norm(a, axis=1, keepdims=True)
    b = b / np.linalg.norm(b, axis=1, keepdims=True)
    logits = scale * a @ b.T

    def ce(z: np.ndarray) -> float:
        z = z - z.max(1, keepdims=True)
        return float(np.mean(np.log(np.exp(z).sum(1)) - np.diag(z)))

    return (ce(logits) + ce(logits.T)) / 2


def test_pair_loss_is_the_closed_form_and_symmetric():
    a = np.array([[1.0, 0.0], [0.0, 2.0], [1.0, 1.0]])
    b = np.array([[2.0, 0.5], [0.1, 1.0], [-1.0, 1.0]])
    loss = ContrastiveLoss(temperature=0.5)
    got = loss.pair(torch.tensor(a), torch.tensor(b)).detach()
    assert float(got) == pytest.approx(closed_form(a, b, 2.0), rel=1e-6)
    assert float(loss.pair(torch.tensor(b), torch.tensor(a)).detach()) == pytest.approx(
        float(got), rel=1e-6
    )
    # Aligned pairs far apart from the others: a small loss.
    eye = torch.eye(3) * 5
    assert float(ContrastiveLoss(temperature=0.05).pair(eye, eye).detach()) < 1e-3


def test_absent_rows_leave_their_pairs_and_the_temperature_is_capped():
    g = torch.Generator().manual_seed(0)
    emb = {s: torch.randn(6, 4, generator=g) for s in ("tab", "text_0", "image_0")}
    present = {"image_0": torch.tensor([1, 1, 0, 1, 0, 1]).bool()}
    loss = ContrastiveLoss()
    keep = present["image_0"]
    expected = (
        loss.pair(emb["image_0"][keep], emb["tab"][keep])
        + loss.pair(emb["image_0"][keep], emb["text_0"][keep])
        + loss.pair(emb["tab"], emb["text_0"])
    ) / 3
    torch.testing.assert_close(loss(emb, present), expected)
    with torch.no_grad():
        loss.logit_scale.fill_(10.0)  # beyond log(100): clamped
    a, b = emb["tab"].double().numpy(), emb["text_0"].double().numpy()
    assert float(loss.pair(emb["tab"], emb["text_0"]).detach()) == pytest.approx(
        closed_form(a, b, 100.0), rel=1e-5
    )
    # A batch with no pair in 2 rows adds nothing (the Trainer's last batch can
    # hold one row), and stays in the graph.
    alone = loss({"tab": emb["tab"][:1], "text_0": emb["text_0"][:1]}, {})
    assert float(alone.detach()) == 0.0
    assert alone.requires_grad


def test_corruption_swaps_values_within_columns():
    x = torch.arange(40.0).reshape(10, 4)
    assert torch.equal(corrupt(x, 0.0), x)
    swapped = corrupt(x, 1.0, torch.Generator().manual_seed(0))
    assert not torch.equal(swapped, x)
    for j in range(4):  # each value comes from its own column
        assert set(swapped[:, j].tolist()) <= set(x[:, j].tolist())
    assert math.isclose(float((corrupt(x, 0.3) != x).float().mean()), 0.3, abs_tol=0.2)


def test_views_corrupt_the_table_and_drop_texts_and_images_at_the_rate():
    from types import SimpleNamespace

    from torch import nn

    from widemm.training.contrastive import Contrasting

    fusion = nn.Identity()
    fusion.output_dim = 4
    model = SimpleNamespace(
        encoders=nn.ModuleDict({"tab": nn.Identity(), "text_0": nn.Identity()}),
        projections=nn.ModuleDict(),
        fusion=fusion,
        embed=None,
        fused=None,
    )
    codes = torch.arange(4000).reshape(1000, 4)
    batch = {
        "tab": {"codes": codes},
        "text_0": {"ids": codes, "present": torch.arange(1000) % 10 > 0},
    }
    same = Contrasting(model, 0.0).view(batch)  # type: ignore[arg-type]
    assert torch.equal(same["tab"]["codes"], codes)
    assert torch.equal(same["text_0"]["present"], batch["text_0"]["present"])
    torch.manual_seed(0)
    view = Contrasting(model, 0.3).view(batch)  # type: ignore[arg-type]
    swapped = float((view["tab"]["codes"] != codes).float().mean())
    assert math.isclose(swapped, 0.3, abs_tol=0.05)
    present = view["text_0"]["present"]
    assert not (present & ~batch["text_0"]["present"]).any()  # absent stays absent
    assert math.isclose(float(present.float().mean()), 0.9 * 0.7, abs_tol=0.05)
    assert torch.equal(view["text_0"]["ids"], codes)  # the text itself is kept
