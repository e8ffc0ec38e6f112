"""Data and workflows that once gave silent wrong answers or confusing errors."""

import json
import os
import pickle
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image
from sklearn.datasets import load_wine
from sklearn.exceptions import NotFittedError
from sklearn.metrics import r2_score
from sklearn.model_selection import train_test_split

import widemm
from tests.conftest import DATA
from widemm import WideDeepClassifier, WideDeepRegressor
from widemm.datasets import load_adult

ROOT = Path(__file__).resolve().parents[1]
MINILM = "sentence-transformers/all-MiniLM-L6-v2"


@pytest.fixture(scope="module")
def adult_small():
    df = load_adult().sample(1500, random_state=1)
    y = df.pop("income")
    return train_test_split(df, y, test_size=0.3, stratify=y, random_state=0)


def small(**params):
    return WideDeepClassifier(**{"max_epochs": 3, "random_state": 0, **params})


# ---------------------------------------------------------------- 1. column names
def test_integer_column_names_keep_each_columns_dtype(adult_small):
    X_train, X_test, y_train, _ = adult_small
    named = small().fit(X_train, y_train)
    numbered = small().fit(X_train.set_axis(range(14), axis=1), y_train)
    assert numbered.schema_.cont_cols == tuple(
        str(list(X_train.columns).index(c)) for c in named.schema_.cont_cols
    )  # numbers stay continuous whatever the names
    np.testing.assert_allclose(
        numbered.predict_proba(X_test.set_axis(range(14), axis=1)),
        named.predict_proba(X_test),
        atol=1e-6,
    )


def test_object_arrays_get_a_dtype_per_column(adult_small):
    X_train, X_test, y_train, _ = adult_small
    model = small().fit(X_train.to_numpy(dtype=object), y_train)
    assert "x0" in model.schema_.cont_cols  # age, from an object array
    assert model.predict(X_test.to_numpy(dtype=object)).shape == (len(X_test),)


def test_integer_named_columns_in_another_order_are_matched_by_name(adult_small):
    X_train, X_test, y_train, _ = adult_small
    model = small().fit(X_train.set_axis(range(14), axis=1), y_train)
    test = X_test.set_axis(range(14), axis=1)
    np.testing.assert_allclose(
        model.predict_proba(test[test.columns[::-1]]), model.predict_proba(test)
    )


# ---------------------------------------------------------------- 2. image cache
def test_an_image_overwritten_on_disk_is_predicted_anew(tmp_path, mobilenet_weights):
    emoji = pd.read_parquet(DATA / "emoji" / "emoji.parquet").sample(80, random_state=0)
    for i, p in enumerate(emoji["image_path"]):
        shutil.copy(DATA / "emoji" / p, tmp_path / f"{i}.png")
    X = pd.DataFrame({"img": [str(tmp_path / f"{i}.png") for i in range(80)]})
    X["n"] = emoji["n_skin_variations"].to_numpy()
    y = emoji["category"].eq("Flags").to_numpy()
    model = WideDeepClassifier(
        image_model="mobilenet_v2",
        image_params={"weights": mobilenet_weights},
        image_size=32,
        max_epochs=2,
        random_state=0,
    ).fit(X, y)
    upload = X.iloc[[0]]
    before = model.predict_proba(upload)[0, 1]
    other = Image.open(DATA / "emoji" / emoji["image_path"].iloc[1])
    other.save(upload["img"].iloc[0])  # same path, new picture
    os.utime(upload["img"].iloc[0], ns=(1, 10**18))  # mtime moves, whatever the clock
    after = model.predict_proba(upload)[0, 1]
    assert after == pytest.approx(model.predict_proba(X.iloc[[1]])[0, 1], abs=1e-6)
    assert after != pytest.approx(before, abs=1e-6)


def test_the_feature_cache_is_bounded_and_not_pickled():
    from widemm.cache import FeatureCache

    encoder = torch.nn.Linear(3, 2).requires_grad_(False)
    cache = FeatureCache(max_rows=50)
    for i in range(5):  # five predicts of 40 new rows each
        cache(
            "slot", encoder, torch.full((40, 3), 100.0 * i) + torch.arange(40)[:, None]
        )
    assert len(cache.entries["slot", False]) == 50
    x = torch.arange(12.0).reshape(4, 3)
    out = cache("slot", encoder, x)["embedding"]
    torch.testing.assert_close(out, encoder(x))


def test_predicting_new_rows_does_not_grow_the_pickled_model(mobilenet_weights):
    df = pd.read_parquet(DATA / "emoji" / "emoji.parquet").sample(200, random_state=0)
    X, y = df[["image_path", "n_skin_variations"]], df["category"].eq("Flags")
    model = WideDeepClassifier(
        image_model="mobilenet_v2",
        image_params={"weights": mobilenet_weights},
        image_root=str(DATA / "emoji"),
        image_size=32,
        max_epochs=1,
        random_state=0,
    ).fit(X[:100], y[:100])
    size = len(pickle.dumps(model))
    model.predict(X[100:])  # 100 new images through the cache
    assert len(pickle.dumps(model)) == size


# ---------------------------------------------------------------- 3. divergence
def test_divergence_on_the_last_step_is_caught(adult_small):
    X_train, _, y_train, _ = adult_small
    wild = dict(learning_rate=1e12, max_epochs=1, batch_size=4096, random_state=0)
    with pytest.raises(FloatingPointError, match="epoch 1"):
        WideDeepClassifier(validation_fraction=0, **wild).fit(X_train, y_train)
    with pytest.raises(FloatingPointError, match="epoch 1"):
        WideDeepClassifier(**wild).fit(X_train, y_train)  # not inside roc_auc_score
    y = (X_train["age"] * 1000.0).to_numpy()
    with pytest.raises(FloatingPointError, match="epoch 1"):
        WideDeepRegressor(**wild).fit(X_train, y)


def test_huge_targets_give_finite_sensible_predictions():
    df = pd.read_parquet(DATA / "california_housing.parquet").sample(
        2000, random_state=0
    )
    y = df.pop("MedHouseVal")
    model = WideDeepRegressor(max_epochs=5, random_state=0).fit(
        df[:1500], y[:1500] * 1e200
    )
    pred = model.predict(df[1500:])
    assert np.isfinite(pred).all()
    assert r2_score(y[1500:], pred / 1e200) > 0.4


# ---------------------------------------------------------------- 4. small tables
def test_a_240_row_table_never_predicts_a_single_class():
    X, y = load_wine(return_X_y=True, as_frame=True)
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, train_size=120, stratify=y, random_state=0
    )
    model = WideDeepClassifier(random_state=0).fit(X_train, y_train)
    assert set(model.predict(X_test)) == {0, 1, 2}
    assert model.score(X_test, y_test) > 0.8
    assert model.batch_size_ < 64  # adapted to 108 training rows


# ---------------------------------------------------------------- 5, 6. text models
def test_a_model_on_a_local_text_model_loads_after_the_folder_moves(tmp_path):
    from widemm.preprocessing.text import local_model_path

    local = tmp_path / "my-minilm"
    base = Path(local_model_path(MINILM))
    shutil.copytree(base, local)
    df = pd.read_parquet(DATA / "womens_clothing_reviews.parquet").sample(
        120, random_state=0
    )
    X, y = df[["Title", "Review Text", "Age"]], df["Recommended IND"]
    model = WideDeepClassifier(text_model=str(local), max_epochs=1, random_state=0)
    model.fit(X, y)
    assert model.model_.encoders["text_0"] is model.model_.encoders["text_1"]
    model.save(tmp_path / "saved")
    shutil.rmtree(local)  # the base model is gone: the saved folder has all it needs
    X.to_parquet(tmp_path / "X.parquet")
    script = (
        "import sys, numpy as np, pandas as pd, widemm\n"
        "m = widemm.load(sys.argv[1])\n"
        "np.save(sys.argv[3], m.predict_proba(pd.read_parquet(sys.argv[2])))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"}
    done = subprocess.run(
        [sys.executable, "-c", script, tmp_path / "saved", tmp_path / "X.parquet",
         tmp_path / "p.npy"],
        capture_output=True, text=True, env=env,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    np.testing.assert_allclose(np.load(tmp_path / "p.npy"), model.predict_proba(X))
    weights = (tmp_path / "saved" / "model.safetensors").stat().st_size
    assert weights < 1.3 * (base / "model.safetensors").stat().st_size
    # (two text columns, one copy of the frozen backbone's weights)


# ---------------------------------------------------------------- 7. bytes
def test_bytes_that_are_not_images_are_categories(adult_small):
    X_train, _X_test, _y_train, _ = adult_small
    X = X_train.assign(code=X_train["age"].map(lambda v: str(v).encode()))
    schema = widemm.infer_schema(X)
    assert schema.role("code") == "cat"
    png = sorted((DATA / "emoji" / "images").glob("*.png"))[:30]
    images = pd.DataFrame({"raw": [p.read_bytes() for p in png]})
    assert widemm.infer_schema(images).role("raw") == "image"


# ---------------------------------------------------------------- 8. images
def test_missing_image_values_are_absent_not_errors():
    df = pd.read_parquet(DATA / "emoji" / "emoji.parquet").sample(60, random_state=0)
    X = df[["image_path", "n_skin_variations"]].copy()
    X.loc[X.index[:5], "image_path"] = None
    model = WideDeepClassifier(
        image_root=str(DATA / "emoji"), image_size=16, max_epochs=1, random_state=0
    ).fit(X, df["category"].eq("Flags"))
    assert np.isfinite(model.predict_proba(X[:8])).all()


# ---------------------------------------------------------------- 9. clear errors
def test_bad_shapes_and_cells_get_errors_that_name_them(adult_small):
    X_train, _X_test, y_train, _ = adult_small
    with pytest.raises(
        ValueError, match=r"2-D y is a multilabel 0/1 indicator.*MultiTask"
    ):
        small().fit(X_train, np.c_[y_train, y_train])
    tags = X_train.assign(tags=[["a", "b"]] * len(X_train))  # lists: multi-valued
    with pytest.raises(
        ValueError, match=rf"'tags' holds list values \(row {tags.index[0]}"
    ):
        small(cat_cols=["tags"]).fit(tags, y_train)
    meta = X_train.assign(meta=[{"a": 1}] * len(X_train))
    with pytest.raises(
        ValueError, match=rf"'meta' holds dict values \(row {meta.index[0]}"
    ):
        small().fit(meta, y_train)
    twice = X_train.set_axis([*X_train.columns[:-1], "age"], axis=1)
    with pytest.raises(ValueError, match=r"duplicated column names: \['age'\]"):
        small().fit(twice, y_train)
    with pytest.raises(NotFittedError):
        small().save("never-written")
    assert not Path("never-written").exists()


def test_lists_and_booleans_at_predict_time_are_refused_not_read(adult_small):
    """A list is no category and no text; a boolean no number (was "[]", 0, 1)."""
    X_train, X_test, y_train, _ = adult_small
    model = small(max_epochs=1).fit(X_train, y_train)
    rows = X_test.head(3).copy()
    label = rows.index[1]
    listed = rows.astype({"workclass": object})
    listed.loc[label, "workclass"] = ["Private", "State-gov"]
    with pytest.raises(
        ValueError, match=rf"'workclass' holds list values \(row {label}"
    ):
        model.predict(listed)
    flagged = rows.astype({"age": object})
    flagged.loc[label, "age"] = True
    with pytest.raises(
        ValueError, match=rf"'age' is continuous but row {label} holds True"
    ):
        model.predict_proba(flagged)
    with pytest.raises(ValueError, match="'age' is continuous but row"):
        model.predict(rows.assign(age=rows["age"] > 40))  # a boolean column


def test_predict_needs_only_the_columns_the_model_uses(adult_small):
    X_train, X_test, y_train, _ = adult_small
    model = small().fit(
        X_train.assign(empty=np.nan, row_id=range(len(X_train))), y_train
    )
    assert set(model.schema_.ignored) == {"empty", "row_id"}
    assert model.predict(X_test).shape == (len(X_test),)
    with pytest.raises(ValueError, match="age"):
        model.predict(X_test.drop(columns="age"))


# ---------------------------------------------------------------- 10. saved JSON
@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda c: c["estimator"]["state"]["__dict__"].update(
            predict_proba="hijacked"), "'predict_proba'"),
        (lambda c: c["estimator"]["state"]["__dict__"].update(
            classes__=1), r"unknown key\(s\) \['classes__'\]"),
        (lambda c: c.update(extra=1), r"unknown key\(s\) \['extra'\]"),
        (lambda c: c["estimator"]["params"]["__dict__"].update(
            bogus=1), r"unknown key\(s\) \['bogus'\]"),
        (lambda c: c["estimator"].update(code="x"), r"unknown key\(s\) \['code'\]"),
    ],
)  # fmt: skip
def test_saved_json_with_unknown_keys_is_refused(adult_small, tmp_path, edit, message):
    X_train, _, y_train, _ = adult_small
    small(max_epochs=1).fit(X_train, y_train).save(tmp_path)
    config = json.loads((tmp_path / "widemm.json").read_text())
    edit(config)
    (tmp_path / "widemm.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match=message):
        widemm.load(tmp_path)


# ---------------------------------------------------------------- 11. float64
def test_probabilities_are_computed_in_float64(adult_small):
    X_train, X_test, y_train, _ = adult_small
    model = small(max_epochs=1).fit(X_train, y_train)
    with torch.no_grad():
        logits = model.model_(model.pipeline_.inputs(X_test, model.model_))[:, 0]
    p = model.predict_proba(X_test)
    np.testing.assert_allclose(np.log(p[:, 1] / p[:, 0]), logits.double(), atol=1e-9)


def test_dicts_in_list_columns_are_refused_and_huge_numbers_are_categories():
    """A dict in a name-list column became the item "{...}"; a float too large
    for int64 in a category column was a TypeError."""
    df = pd.read_parquet(DATA / "movies.parquet").dropna(subset=["Meter"])
    df = df.sample(300, random_state=0)[["Rating", "Writer", "Year", "Meter"]]
    y = df.pop("Meter")
    model = WideDeepRegressor(max_epochs=1, random_state=0).fit(df, y)
    assert model.schema_.role("Writer") == "multi"
    assert model.schema_.role("Rating") == "cat"
    rows = df.head(2).astype({"Writer": object})
    label = rows.index[1]
    rows.at[label, "Writer"] = {"name": "Ann"}
    with pytest.raises(ValueError, match=rf"'Writer' is multi-valued but row {label}"):
        model.predict(rows)
    huge = df.head(2).astype({"Rating": object})
    huge.at[label, "Rating"] = 9.2e18
    assert np.isfinite(model.predict(huge)).all()
