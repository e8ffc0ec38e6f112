"""widemm models as MLflow pyfunc models (``pip install widemm[mlflow]``).

    import widemm.mlflow_model as wm
    with mlflow.start_run():
        info = wm.log_model(model, name="model")
    loaded = mlflow.pyfunc.load_model(info.model_uri)
    loaded.predict(rows)                              # model.predict(rows)
    loaded.predict(rows, params={"output": "proba"})  # model.predict_proba(rows)

The model is stored as ``widemm.save`` writes it (safetensors + JSON, no pickle)
in the MLflow model's artifacts; loading it runs ``widemm.load``.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import mlflow.pyfunc


class WideDeepPyfunc(mlflow.pyfunc.PythonModel):  # type: ignore[name-defined]
    """Predicts with the widemm model saved in the artifact ``model``."""

    def load_context(self, context: Any) -> None:
        import widemm

        self.model = widemm.load(context.artifacts["model"])

    def predict(self, context: Any, model_input: Any, params: Any = None) -> Any:
        """``params={"output": "proba"}``: probabilities instead of predictions."""
        if (params or {}).get("output") == "proba":
            return self.model.predict_proba(model_input)
        return self.model.predict(model_input)


def _saved(model: Any, folder: str) -> dict[str, Any]:
    """Save the model; return the artifacts and a signature of the one parameter.

    No input schema: MLflow's would refuse integer columns holding a NaN (or
    int64 where it saw float64); the model checks its inputs itself, naming the
    column and row of a bad value.
    """
    from mlflow.models import ModelSignature
    from mlflow.types import ParamSchema, ParamSpec

    path = Path(folder) / "widemm-model"
    model.save(path)
    params = ParamSchema([ParamSpec("output", "string", "predict")])
    return {
        "artifacts": {"model": str(path)},
        "signature": ModelSignature(params=params),
    }


def save_model(model: Any, path: str | os.PathLike[str], **options: Any) -> None:
    """Write ``model`` as an MLflow pyfunc model folder (``pyfunc.save_model``)."""
    with tempfile.TemporaryDirectory() as folder:
        mlflow.pyfunc.save_model(
            str(path),
            python_model=WideDeepPyfunc(),
            **_saved(model, folder),
            **options,
        )


def log_model(model: Any, name: str = "model", **options: Any) -> Any:
    """Log ``model`` to the active MLflow run; return its ``ModelInfo``."""
    with tempfile.TemporaryDirectory() as folder:
        return mlflow.pyfunc.log_model(
            name=name,
            python_model=WideDeepPyfunc(),
            **_saved(model, folder),
            **options,
        )
