import json
import subprocess
import sys

import numpy as np
import pytest

import widemm
from widemm import WideDeepClassifier, WideDeepRegressor


@pytest.fixture(scope="module")
def saved(tmp_path_factory, adult_xy_module):
    X, y = adult_xy_module
    model = WideDeepClassifier(
        max_epochs=2, random_state=0, crossed_cols=[("education", "occupation")]
    ).fit(X, y)
    path = tmp_path_factory.mktemp("model")
    model.save(path)
    return model, path


@pytest.fixture(scope="module")
def adult_xy_module():
    import pandas as pd

    from tests.conftest import DATA

    df = pd.read_parquet(DATA / "adult.parquet").sample(1500, random_state=2)
    return df.drop(columns="income"), df["income"]


def test_saved_folder_holds_no_pickle(saved):
    _, path = saved
    files = sorted(p.name for p in path.iterdir())
    assert files == ["MODEL_CARD.md", "model.safetensors", "report.html", "widemm.json"]
    for p in path.iterdir():
        assert not p.read_bytes().startswith(b"\x80")  # pickle protocol 2+ header
    json.loads((path / "widemm.json").read_text())


def test_load_in_new_process_predicts_identically(saved, adult_xy_module, tmp_path):
    model, path = saved
    X, _ = adult_xy_module
    X.to_parquet(tmp_path / "X.parquet")
    code = (
        "import sys, numpy as np, pandas as pd, widemm;"
        "m = widemm.load(sys.argv[1]); X = pd.read_parquet(sys.argv[2]);"
        "np.save(sys.argv[3], m.predict_proba(X))"
    )
    out = tmp_path / "proba.npy"
    subprocess.run(
        [sys.executable, "-c", code, str(path), str(tmp_path / "X.parquet"), str(out)],
        check=True,
    )
    np.testing.assert_array_equal(np.load(out), model.predict_proba(X))


def test_loaded_estimator_keeps_params_and_fitted_state(saved):
    model, path = saved
    loaded = widemm.load(path)
    assert type(loaded) is WideDeepClassifier
    assert loaded.get_params() == model.get_params()
    assert loaded.schema_ == model.schema_
    np.testing.assert_array_equal(loaded.classes_, model.classes_)
    assert loaded.history_.equals(model.history_)


def test_regressor_round_trip(tmp_path, adult_xy_module):
    X, _ = adult_xy_module
    y = X.pop("hours-per-week")
    model = WideDeepRegressor(max_epochs=1, scaling="standard", random_state=0).fit(
        X, y
    )
    model.save(tmp_path)
    np.testing.assert_array_equal(widemm.load(tmp_path).predict(X), model.predict(X))


def test_load_refuses_unknown_classes_and_bad_folders(saved, tmp_path):
    _, path = saved
    config = json.loads((path / "widemm.json").read_text())
    config["estimator"]["__object__"] = "os.system"
    (tmp_path / "widemm.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match=r"unknown class 'os\.system'"):
        widemm.load(tmp_path)
    with pytest.raises(FileNotFoundError, match="not a saved widemm model"):
        widemm.load(tmp_path / "nothing")


def test_save_rejects_callable_params(adult_xy_module, tmp_path):
    from widemm.models import TabMLP

    X, y = adult_xy_module
    model = WideDeepClassifier(tab_model=TabMLP, max_epochs=1).fit(X, y)
    with pytest.raises(TypeError, match="not callables"):
        model.save(tmp_path)
