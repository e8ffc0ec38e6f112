"""The MLflow pyfunc wrapper: log to a run, load, predict as the model does."""

import numpy as np
import pytest

from widemm import WideDeepClassifier
from widemm.datasets import load_adult

mlflow = pytest.importorskip("mlflow", reason="the mlflow extra is not installed")


def test_logged_model_loads_and_predicts_as_the_model(tmp_path, monkeypatch):
    import widemm.mlflow_model as wm

    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")  # a local run store
    mlflow.set_tracking_uri((tmp_path / "runs").as_uri())
    df = load_adult().sample(800, random_state=0)
    y = df.pop("income")
    model = WideDeepClassifier(max_epochs=2, random_state=0).fit(df, y)
    with mlflow.start_run():
        info = wm.log_model(model, name="model")
    loaded = mlflow.pyfunc.load_model(info.model_uri)
    rows = df.head(50)
    np.testing.assert_array_equal(loaded.predict(rows), model.predict(rows))
    proba = loaded.predict(rows, params={"output": "proba"})
    np.testing.assert_allclose(proba, model.predict_proba(rows))
    missing = rows.head(3).astype({"age": "float64"}).assign(age=np.nan)
    np.testing.assert_array_equal(loaded.predict(missing), model.predict(missing))
    wm.save_model(model, tmp_path / "saved")
    again = mlflow.pyfunc.load_model(str(tmp_path / "saved"))
    np.testing.assert_array_equal(again.predict(rows), model.predict(rows))
