"""Export a fitted estimator's network as one graph that runs without widemm's training.

``estimator.export(folder, format="onnx")`` writes:

- ``model.onnx`` (``format="onnx"``, opset from ``torch.onnx``'s dynamo exporter) or
  ``model.pt2`` (``format="torch_export"``, ``torch.export.save``): the network
  from flat named inputs (``wide``, ``tab.cat``, ``tab.cont``, ``text_0.input_ids``,
  ``text_0.attention_mask``, ``text_0.present``, ...; see
  ``widemm.preprocessing.arrays``) to the logits, with a dynamic batch size.
  Text backbones (trained or frozen) are inside the graph: it takes token ids, not
  cached embeddings.
- ``export.json``: what turns a DataFrame into those inputs and logits back into
  predictions: the columns, their roles, the fitted wide, tabular and text
  preprocessors, and the targets (classes, scales, temperature, quantiles).

:func:`widemm.onnx_model.load_onnx` runs an ONNX export with onnxruntime,
numpy, pandas, scikit-learn and tokenizers: torch need not be installed.

Covered: the wide part, tabular columns (MLP or FT-Transformer), text columns
(bag-of-words or a transformers backbone) and every kind of target. Image
columns export into the graph (inputs ``image_0.pixels``, ``image_0.present``),
but preparing images is not in widemm.onnx_model yet: it refuses such a
model, and a torch process can feed the graph itself.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch import Tensor, nn

from widemm import persistence
from widemm.data import FrameDataset
from widemm.preprocessing import fitted_classes
from widemm.preprocessing.arrays import flatten, nest
from widemm.targets import target_classes

Format = Literal["onnx", "torch_export"]
FORMATS = ("onnx", "torch_export")
CONFIG, GRAPHS = "export.json", {"onnx": "model.onnx", "torch_export": "model.pt2"}


class FlatInputs(nn.Module):
    """The model, called with flat ``slot.field`` tensors instead of nested dicts."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, inputs: dict[str, Tensor]) -> Tensor:
        return self.model(nest(inputs))


def export(
    estimator: Any, folder: str | os.PathLike[str], fmt: Format = "onnx"
) -> Path:
    """Write ``estimator``'s graph and ``export.json`` to ``folder``; return the graph.

    The graph is checked on the 50 background rows kept at fit: it must give the
    eager model's logits to 1e-4 (``export.json`` records the largest difference).
    """
    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {FORMATS}, got {fmt!r}.")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    pipeline, model = estimator.pipeline_, estimator.model_.eval().cpu()
    rows = pipeline.background_.infer_objects()
    sample = FrameDataset(pipeline.transform(rows))[slice(0, len(rows))]
    inputs = flatten(sample)
    wrapper = FlatInputs(model).eval()
    batch = torch.export.Dim("batch", min=1)  # tokens: padded to a fixed length
    dynamic = {name: {0: batch} for name in inputs}
    graph = folder / GRAPHS[fmt]
    with torch.no_grad():
        expected = model(sample).numpy()
        if fmt == "onnx":
            torch.onnx.export(
                wrapper,
                (),
                str(graph),
                kwargs={"inputs": inputs},
                input_names=list(inputs),
                output_names=["logits"],
                dynamic_shapes={"inputs": dynamic},
                dynamo=True,
                verbose=False,
            )
            got = run_onnx(graph, {k: v.numpy() for k, v in inputs.items()})
        else:
            program = torch.export.export(
                wrapper,
                (),
                kwargs={"inputs": inputs},
                dynamic_shapes={"inputs": dynamic},
            )
            torch.export.save(program, str(graph))
            got = program.module()(inputs=inputs).numpy()
    error = float(np.abs(got - expected).max())
    if not error <= 1e-4:
        raise RuntimeError(
            f"The exported graph's logits differ from the model's by {error:.3g} on "
            "the background rows; not writing an export that predicts otherwise."
        )
    classes = {**fitted_classes(images=False), **target_classes()}
    state = {
        "format": fmt,
        "graph": graph.name,
        "inputs": list(inputs),
        "estimator": type(estimator).__name__,
        "columns": list(estimator.feature_names_in_),
        "ignored": list(pipeline.schema_.ignored),
        "text_slots": dict(pipeline.schema_.text_slots),
        "image_slots": dict(pipeline.schema_.image_slots),
        "preprocessors": {
            k: v for k, v in pipeline.preprocessors_.items() if k != "image"
        },
        "targets": list(estimator.targets_),
        "target_names": list(getattr(estimator, "target_names_", [])) or None,
        "max_error": error,
    }
    text = persistence.dumps(state, classes)
    (folder / CONFIG).write_text(text)
    return graph


def run_onnx(graph: Path, arrays: dict[str, np.ndarray]) -> np.ndarray:
    """Logits of an ONNX graph on named numpy inputs (one CPU session)."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(graph), providers=["CPUExecutionProvider"])
    names = {i.name for i in session.get_inputs()}
    return session.run(None, {k: v for k, v in arrays.items() if k in names})[0]
