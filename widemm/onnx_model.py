"""Run an exported model (``estimator.export``) without torch: onnxruntime + numpy.

    model = widemm.onnx_model.load_onnx("adult-export")
    model.predict(rows)            # as the estimator predicts, to 1e-5
    model.predict_proba(rows)

Needs ``onnxruntime``, numpy, pandas, scikit-learn and (text columns) tokenizers;
``pip install widemm[onnx]``. This module imports no torch, and nor does
anything it loads (a test runs it with torch blocked).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator

from widemm import persistence
from widemm.preprocessing import fitted_classes
from widemm.preprocessing.arrays import frame_arrays
from widemm.targets import Outputs, target_classes
from widemm.validation import check_frame

CONFIG = "export.json"


class OnnxModel(BaseEstimator):
    """An exported graph with its preprocessing and targets; predicts as its estimator.

    Attributes
    ----------
    targets_ : list of Labels, LabelSets or Values
    feature_names_in_, n_features_in_
        The columns it takes (those the model ignored may be left out).
    classes_ : ndarray
        One classification target: its classes (or labels).
    """

    def __init__(self, path: str | os.PathLike[str] = ".") -> None:
        self.path = path

    def _load(self) -> OnnxModel:
        import onnxruntime as ort

        folder = Path(self.path)
        if not (folder / CONFIG).is_file():
            raise FileNotFoundError(f"{folder} holds no {CONFIG}: no widemm export.")
        classes = {**fitted_classes(images=False), **target_classes()}
        state = persistence.loads(
            (folder / CONFIG).read_text(), classes, str(folder / CONFIG)
        )
        if state["format"] != "onnx":
            raise ValueError(
                f"{folder} holds a {state['format']!r} export, which needs torch "
                "(torch.export.load); export with format='onnx' to run without it."
            )
        if state["image_slots"]:
            raise ValueError(
                f"{folder}'s model reads image columns "
                f"{sorted(state['image_slots'].values())}: widemm.onnx_model does "
                "not prepare images yet (the graph takes their pixels as "
                "'<slot>.pixels'; see widemm.export)."
            )
        self.state_ = state
        self.targets_ = state["targets"]
        self.feature_names_in_ = np.asarray(state["columns"], dtype=object)
        self.n_features_in_ = len(state["columns"])
        options = ort.SessionOptions()
        self.session_ = ort.InferenceSession(
            str(folder / state["graph"]), options, providers=["CPUExecutionProvider"]
        )
        return self

    @property
    def classes_(self) -> np.ndarray:
        return self.targets_[0].class_names

    def _frame(self, X: Any) -> pd.DataFrame:
        return check_frame(self, X, reset=False, optional=self.state_["ignored"])

    def logits(self, X: Any) -> np.ndarray:
        """Return the graph's logits, (n_rows, n_outputs), for the rows of X."""
        frame = self._frame(X)
        pre = self.state_["preprocessors"]
        arrays = frame_arrays(pre, self.state_["text_slots"], frame)
        return self.session_.run(None, {k: arrays[k] for k in self.state_["inputs"]})[0]

    @property
    def outputs_(self) -> Outputs:
        """The targets' decoding of the logits (see ``widemm.targets.Outputs``)."""
        return Outputs(self.targets_, self.state_["target_names"])

    def predict(self, X: Any) -> Any:
        """Predict as the estimator's ``predict`` does."""
        return self.outputs_.predict(self.logits(X), self._frame(X).index)

    def predict_proba(self, X: Any) -> Any:
        """Probabilities as the estimator's ``predict_proba`` gives them."""
        return self.outputs_.proba(self.logits(X), self._frame(X).index)


def load_onnx(path: str | os.PathLike[str]) -> OnnxModel:
    """Load a folder written by ``estimator.export(path, format="onnx")``."""
    return OnnxModel(path)._load()
