"""Export: ONNX and torch.export graphs, and the torch-free runtime, against eager."""

import subprocess
import sys
import textwrap

import numpy as np
import pandas as pd
import pytest
import torch

import widemm
from tests.conftest import DATA
from widemm import WideDeepClassifier, WideDeepMultiTask, WideDeepRegressor
from widemm.datasets import load_adult
from widemm.onnx_model import load_onnx

NO_TORCH = """
import sys
class NoTorch:  # as if torch were not installed
    def find_spec(self, name, path=None, target=None):
        if name == "torch" or name.startswith("torch."):
            raise ModuleNotFoundError(f"No module named {name!r}")
sys.meta_path.insert(0, NoTorch())
"""


@pytest.fixture(scope="module")
def adult():
    df = load_adult().sample(2500, random_state=0)
    y = df.pop("income")
    return df, y, WideDeepClassifier(max_epochs=3, random_state=0).fit(df, y)


def test_onnx_export_runs_without_torch_and_matches_eager(adult, tmp_path):
    X, _, model = adult
    model.export(tmp_path / "export")
    X.head(700).to_parquet(tmp_path / "rows.parquet")
    script = NO_TORCH + textwrap.dedent(f"""
        import numpy as np, pandas as pd
        from widemm.onnx_model import load_onnx
        model = load_onnx({str(tmp_path / "export")!r})
        rows = pd.read_parquet({str(tmp_path / "rows.parquet")!r})
        np.save({str(tmp_path / "proba.npy")!r}, model.predict_proba(rows))
        np.save({str(tmp_path / "one.npy")!r}, model.predict_proba(rows.head(1)))
        print("torch loaded:", "torch" in sys.modules)
    """)
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "torch loaded: False" in done.stdout
    expected = model.predict_proba(X.head(700))
    np.testing.assert_allclose(np.load(tmp_path / "proba.npy"), expected, atol=1e-5)
    np.testing.assert_allclose(np.load(tmp_path / "one.npy"), expected[:1], atol=1e-5)


def test_torch_export_program_matches_eager(adult, tmp_path):
    X, _, model = adult
    graph = model.export(tmp_path / "pt2", format="torch_export")
    program = torch.export.load(str(graph)).module()
    from widemm.data import FrameDataset
    from widemm.preprocessing.arrays import flatten

    rows = X.head(300)
    inputs = flatten(FrameDataset(model.pipeline_.transform(rows))[slice(0, 300)])
    with torch.no_grad():
        logits = program(inputs=inputs).numpy()
    np.testing.assert_allclose(logits, model.logits(rows), atol=1e-5)
    with pytest.raises(ValueError, match="needs torch"):
        load_onnx(tmp_path / "pt2")


def test_regression_with_quantiles_and_text_export(tmp_path):
    frame = pd.read_parquet(DATA / "california_housing.parquet").sample(
        2000, random_state=0
    )
    y = frame.pop("MedHouseVal")
    model = WideDeepRegressor(quantiles=(0.1, 0.5, 0.9), max_epochs=3, random_state=0)
    model.fit(frame, y).export(tmp_path / "cal")
    exported = load_onnx(tmp_path / "cal")
    np.testing.assert_allclose(exported.predict(frame), model.predict(frame), rtol=1e-5)
    reviews = pd.read_parquet(DATA / "womens_clothing_reviews.parquet").sample(
        600, random_state=0
    )
    target = reviews.pop("Recommended IND")
    text = WideDeepClassifier(max_epochs=2, random_state=0).fit(reviews, target)
    assert text.schema_.text_slots  # bag-of-words text columns in the graph
    text.export(tmp_path / "text")
    np.testing.assert_allclose(
        load_onnx(tmp_path / "text").predict_proba(reviews),
        text.predict_proba(reviews),
        atol=1e-5,
    )


def test_multitask_export_predicts_every_task(tmp_path):
    movies = pd.read_parquet(DATA / "movies.parquet").sample(1500, random_state=0)
    inputs = ["Title", "Year", "Runtime", "Rating", "Language", "Reviews"]
    Y = movies[["Genre", "Meter", "Metacritic"]]
    model = WideDeepMultiTask(max_epochs=2, random_state=0).fit(movies[inputs], Y)
    model.export(tmp_path / "mt")
    exported = load_onnx(tmp_path / "mt")
    got, expected = exported.predict(movies[inputs]), model.predict(movies[inputs])
    pd.testing.assert_series_equal(got["Genre"], expected["Genre"])
    np.testing.assert_allclose(got["Meter"], expected["Meter"], rtol=1e-5)
    proba = exported.predict_proba(movies[inputs])["Genre"]
    np.testing.assert_allclose(
        proba, model.predict_proba(movies[inputs])["Genre"], atol=1e-5
    )


def test_image_models_export_their_graph_but_the_runtime_says_it_cannot_prepare_images(
    tmp_path,
):
    emoji = pd.read_parquet(DATA / "emoji" / "emoji.parquet").head(120)
    model = WideDeepClassifier(image_root=str(DATA / "emoji"), image_size=32,
                               max_epochs=1, random_state=0)  # fmt: skip
    model.fit(emoji[["image_path", "added_in"]], emoji["category"])
    model.export(tmp_path / "img")  # checks the graph against eager on 50 rows
    with pytest.raises(ValueError, match=r"reads image columns \['image_path'\]"):
        load_onnx(tmp_path / "img")
    with pytest.raises(ValueError, match="format must be one of"):
        model.export(tmp_path / "x", format="tflite")


def test_cross_attention_exports_and_reloads(tmp_path):
    reviews = pd.read_parquet(DATA / "womens_clothing_reviews.parquet").sample(
        600, random_state=0
    )
    target = reviews.pop("Recommended IND")
    model = WideDeepClassifier(fusion="cross_attention", max_epochs=2, random_state=0)
    model.fit(reviews, target)
    expected = model.predict_proba(reviews)
    model.export(tmp_path / "onnx")
    exported = load_onnx(tmp_path / "onnx").predict_proba(reviews)
    np.testing.assert_allclose(exported, expected, atol=1e-5)
    model.save(tmp_path / "saved")
    np.testing.assert_array_equal(
        widemm.load(tmp_path / "saved").predict_proba(reviews), expected
    )


def test_a_small_tables_line_exports(tmp_path):
    from sklearn.datasets import load_wine

    X, y = load_wine(return_X_y=True, as_frame=True)
    model = WideDeepClassifier(max_epochs=3, random_state=0).fit(X, y)
    assert not model.pipeline_.preprocessors_["trees"].boost  # 178 rows: a line
    model.export(tmp_path / "export")
    exported = load_onnx(tmp_path / "export")
    expected = model.predict_proba(X)
    np.testing.assert_allclose(exported.predict_proba(X), expected, atol=1e-5)
