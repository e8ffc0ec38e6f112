import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.model_selection import train_test_split

import widemm
from tests.conftest import DATA
from widemm import WideDeepClassifier

EMOJI = DATA / "emoji"
TAB = ["added_in", "n_skin_variations", "has_img_apple", "has_img_google"]
TAB += ["has_img_facebook"]


@pytest.fixture(scope="module")
def emoji():
    df = pd.read_parquet(EMOJI / "emoji.parquet").drop(columns="sort_order")
    df = df[df["category"].isin(["Flags", "Food & Drink", "Smileys & Emotion"])]
    y = df.pop("category")
    return train_test_split(
        df, y, train_size=240, test_size=120, stratify=y, random_state=0
    )


@pytest.fixture(scope="module")
def pretrained(emoji, mobilenet_weights):
    X_train, _, y_train, _ = emoji
    params = dict(
        image_model="mobilenet_v2",
        image_params={"weights": mobilenet_weights},
        image_root=str(EMOJI),
        image_size=64,
        max_epochs=4,
        random_state=0,
    )
    cols = ["image_path", *TAB]
    cached = WideDeepClassifier(**params).fit(X_train[cols], y_train)
    uncached = WideDeepClassifier(cache_features=False, **params)
    uncached.fit(X_train[cols], y_train)
    return cached, uncached, cols


def test_pretrained_image_beats_tabular_only(emoji, pretrained):
    _, X_test, _, y_test = emoji
    cached, _, cols = pretrained
    assert set(cached.model_.encoders) == {"tab", "image_0"}
    assert cached.score(X_test[cols], y_test) > 0.75  # three classes, 4 epochs, 64 px
    tab = WideDeepClassifier(max_epochs=4, random_state=0).fit(emoji[0][TAB], emoji[2])
    # The tabular columns alone reach 0.74-0.78, the images 0.875-0.925 (seeds 0-2,
    # dropout masks of either kind): small batches on this small table.
    assert cached.score(X_test[cols], y_test) > tab.score(X_test[TAB], y_test) + 0.1


def test_image_cache_gives_the_same_predictions(emoji, pretrained):
    _, X_test, _, _ = emoji
    cached, uncached, cols = pretrained
    expected = uncached.predict_proba(X_test[cols])
    np.testing.assert_allclose(cached.predict_proba(X_test[cols]), expected, atol=1e-5)


def test_image_text_and_tabular_together_and_round_trip(emoji, tmp_path):
    X_train, X_test, y_train, _ = emoji
    cols = ["image_path", "name", *TAB]
    model = WideDeepClassifier(
        image_root=str(EMOJI),
        image_size=32,
        max_epochs=2,
        random_state=0,
        text_cols=["name"],
    ).fit(X_train[cols], y_train)
    assert set(model.model_.encoders) == {"tab", "text_0", "image_0"}
    model.save(tmp_path)
    loaded = widemm.load(tmp_path)
    np.testing.assert_array_equal(
        loaded.predict_proba(X_test[cols]), model.predict_proba(X_test[cols])
    )


def test_broken_images_raise_or_train_as_absent(emoji, tmp_path):
    X_train, _, y_train, _ = emoji
    X = X_train[["image_path", *TAB]].head(60).copy()
    X["image_path"] = [str(EMOJI / p) for p in X["image_path"]]
    (tmp_path / "bad.png").write_bytes(b"not a png")
    X.iloc[3, 0] = str(tmp_path / "bad.png")
    X.iloc[5, 0] = str(tmp_path / "gone.png")
    params = dict(image_size=32, max_epochs=1, random_state=0)
    y = y_train.head(60)
    gone, bad = X.index[5], X.index[3]  # errors name rows by index label
    with pytest.raises(FileNotFoundError, match=rf"rows {gone}: .*gone\.png"):
        WideDeepClassifier(**params).fit(X, y)  # before any training
    with pytest.raises(ValueError, match=rf"row {bad}: cannot read image .*bad\.png"):
        WideDeepClassifier(**params).fit(X.drop(index=gone), y.drop(index=gone))
    model = WideDeepClassifier(on_error="mask", **params).fit(X, y)
    proba = model.predict_proba(X.iloc[[3, 5, 0]])
    assert np.isfinite(proba).all()
    assert not np.allclose(proba[0], proba[2])  # absent image != a real one


def test_two_image_columns_share_one_encoder(emoji):
    X_train, _, y_train, _ = emoji
    X = X_train[["image_path", *TAB]].head(64).assign(copy=lambda d: d["image_path"])
    model = WideDeepClassifier(
        image_root=str(EMOJI),
        image_size=32,
        max_epochs=1,
        share_encoders=True,
        image_cols=["image_path", "copy"],
        random_state=0,
    ).fit(X, y_train.head(64))
    encoders = model.model_.encoders
    assert encoders["image_0"] is encoders["image_1"]


def test_pretrained_image_model_reloads_frozen_and_identical(
    emoji, pretrained, tmp_path
):
    _, X_test, _, _ = emoji
    cached, _, cols = pretrained
    cached.save(tmp_path)
    loaded = widemm.load(tmp_path)
    assert loaded.model_.encoders["image_0"].frozen  # as trained, so still cached
    expected = cached.predict_proba(X_test[cols])
    np.testing.assert_allclose(loaded.predict_proba(X_test[cols]), expected, atol=1e-6)


@pytest.mark.parametrize("tab_model", ["mlp", "tabm"])
def test_cross_attention_over_cached_tokens(emoji, mobilenet_weights, tab_model):
    """Frozen backbones' tokens (name segments, image cells) come from the cache:
    the same predictions as encoding every batch, saved and explained alike."""
    X_train, X_test, y_train, y_test = emoji
    cols = ["image_path", "name", *TAB]
    params = dict(
        fusion="cross_attention",
        image_model="mobilenet_v2",
        image_params={"weights": mobilenet_weights},
        text_model="sentence-transformers/all-MiniLM-L6-v2",
        text_cols=["name"],
        image_root=str(EMOJI),
        image_size=64,
        tab_model=tab_model,
        trees=False,  # the taps' quadrature is tested; the trees' share is exact
        max_epochs=4,
        random_state=0,
    )
    cached = WideDeepClassifier(**params).fit(X_train[cols], y_train)
    assert cached.score(X_test[cols], y_test) > 0.8
    inputs = cached.pipeline_.inputs(X_test[cols][:3], cached.model_)
    assert inputs["image_0"]["tokens"].shape == (3, 9, 1280)
    assert inputs["text_0"]["tokens"].dtype == torch.float16
    expected = cached.predict_proba(X_test[cols])
    cached.set_params(cache_features=False)
    np.testing.assert_allclose(cached.predict_proba(X_test[cols]), expected, atol=2e-3)
    rows, background = X_test[cols][:3], X_train[cols][:20]
    coarse = cached.explain(rows, "gradient", background=background, n_steps=8)
    e = cached.explain(rows, "gradient", background=background, n_steps=64)
    assert e.max_error < min(0.05, coarse.max_error)  # through the token taps
    assert (e.values["name"].abs() > 0).all()
    assert (e.values["image_path"].abs() > 0).all()
    tokens = e.tokens(rows.index[0], "name")  # through the encoder's tokens
    assert tokens["attribution"].abs().sum() > 0


EXPLAIN_IN_BOUNDS = """
import resource, sys
import pandas as pd
from widemm import WideDeepClassifier
df = pd.read_parquet(sys.argv[1]).drop(columns="sort_order").sample(60, random_state=0)
y = df.pop("category")
X = df[["image_path", "name", "added_in"]]
model = WideDeepClassifier(
    image_root=sys.argv[2], image_size=224, max_epochs=1, random_state=0
).fit(X, y)
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
for method in ("gradient", "permutation"):
    e = model.explain(X.head(4), background=X.tail(4), method=method, n_steps=16)
    assert abs(e.max_error) < 0.05, e.max_error
e.regions(X.index[0], "image_path", grid=4)
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(round(before), round(after))
"""


def test_explaining_an_image_model_at_224_px_stays_within_memory():
    # 4 rows x 4 background rows x 16 steps: 256 images of 224 px with their
    # gradients in one call took gigabytes; calls are cut to a byte budget.
    import subprocess
    import sys

    done = subprocess.run(
        [
            sys.executable,
            "-c",
            EXPLAIN_IN_BOUNDS,
            str(EMOJI / "emoji.parquet"),
            str(EMOJI),
        ],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    before, after = map(int, done.stdout.split()[-2:])
    assert after - before < 800  # MiB added by explaining, over training's peak


def test_a_call_takes_as_many_rows_as_fit_in_the_budget(emoji, pretrained):
    from widemm.data import FrameDataset
    from widemm.explain.attribution import rows_per_call

    _, X_test, _, _ = emoji
    cached, uncached, cols = pretrained

    def rows(model, budget, backward):
        data = FrameDataset(model.pipeline_.inputs(X_test[cols].head(4), model.model_))
        batch = data[slice(0, len(data))]
        return rows_per_call(model.model_.eval(), batch, backward, budget)

    live = rows(uncached, 2**26, backward=True)
    assert live < rows(cached, 2**26, backward=True) / 10  # a CNN, not a vector
    assert rows(uncached, 2**27, backward=True) in (2 * live, 2 * live + 1)
    assert rows(uncached, 2**26, backward=False) >= 2 * live - 1
