"""Exported graphs (onnxruntime, no torch) beside eager torch, on Adult and California.

    python bench/export.py    # JSON lines; writes results/export.json

Default models on the fixed splits. For each: export seconds, the largest
logit difference on the test split (standardised values for regression), rows per
second predicting the whole test split at once, and one-row p50/p99 latency, for the
estimator's
``predict_proba``/``predict`` (eager) and the ONNX export run by
``widemm.onnx_model`` with onnxruntime. Measured in one process, alternating
eager and ONNX 3 times; medians.
"""

from __future__ import annotations

import tempfile

import numpy as np
from common import emit, latency_ms, save_results, split, timed

from widemm import WideDeepClassifier, WideDeepRegressor
from widemm.onnx_model import load_onnx


def main() -> None:
    rows = []
    for name, target, cls in (
        ("adult", "income", WideDeepClassifier),
        ("california_housing", "MedHouseVal", WideDeepRegressor),
    ):
        stratify = cls is WideDeepClassifier
        X_train, X_test, y_train, _ = split(name, target, stratify=stratify)
        model = cls(random_state=0).fit(X_train, y_train)
        folder = tempfile.mkdtemp()
        _, export_seconds = timed(lambda m=model, f=folder: m.export(f))
        exported = load_onnx(folder)
        method = "predict_proba" if stratify else "predict"
        runs = {
            "eager torch": getattr(model, method),
            "ONNX (onnxruntime)": getattr(exported, method),
        }
        diff = float(np.abs(model.logits(X_test) - exported.logits(X_test)).max())
        results: dict[str, list[dict[str, float]]] = {k: [] for k in runs}
        for _ in range(3):  # alternate: eager, ONNX, eager, ONNX...
            for label, predict in runs.items():
                _, seconds = timed(lambda p=predict, x=X_test: p(x))
                results[label].append(
                    {
                        "predict_rows_per_s": len(X_test) / seconds,
                        **latency_ms(predict, X_test, 300),
                    }
                )
        for label, runs_of in results.items():
            row = {"model": f"{name}: {label}", "rows": len(X_test)}
            for key in runs_of[0]:
                row[key] = round(float(np.median([r[key] for r in runs_of])), 3)
            if label.startswith("ONNX"):
                # as text: emit rounds floats to 4 decimals
                row.update(
                    export_seconds=round(export_seconds, 1), max_abs_diff=f"{diff:.1e}"
                )
            emit(row)
            rows.append(row)
    save_results("export", rows)


if __name__ == "__main__":
    main()
