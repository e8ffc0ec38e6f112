"""Fusion layers on the reviews data (text + tabular, frozen MiniLM with its cache).

    python bench/fusion.py

Every fusion trains through ``WideDeepClassifier(fusion=...)`` with 3 seeds on
6,000 training rows and 3,000 test rows of the fixed split (MiniLM encodes each
text once per kind of output; all rows took 25 minutes per kind here), with the
MLP as the tabular part (TabM, the default at this size, folds its 16 members
into rows through every fusion: 16x the cost of what is compared); then concat
fusion trains with and without modality dropout and is scored on the test rows
as they are and with all their text removed. MiniLM is
frozen, so its outputs are the same in every run: one FeatureCache serves them all
(each review is encoded once per process, not once per run). One JSON line per
run, then a summary line per fusion; all saved to results/fusion.json. The
``cross_attention`` fusion reads token sequences (8 segments per text column),
cached apart from the pooled embeddings.
"""

from __future__ import annotations

import json
import statistics

from common import RESULTS, machine, peak_rss_mb, timed
from reviews import MINILM, TEXT, data
from sklearn.metrics import roc_auc_score

from widemm import WideDeepClassifier
from widemm.cache import FeatureCache
from widemm.models import FUSIONS
from widemm.pipeline import FeaturePipeline

SEEDS = (0, 1, 2)
TRAIN_ROWS, TEST_ROWS = 6000, 3000
CACHE = FeatureCache()
# Every fit here has the same text model and columns: one cache serves them all.
FeaturePipeline.feature_cache = lambda self: CACHE  # type: ignore[method-assign]


def fit_score(fusion: str, seed: int, X_train, y_train, tests, **params) -> dict:
    model = WideDeepClassifier(
        text_model=MINILM, fusion=fusion, random_state=seed, tab_model="mlp", **params
    )
    _, fit_s = timed(lambda: model.fit(X_train, y_train))
    aucs = {
        k: roc_auc_score(y, model.predict_proba(X)[:, 1]) for k, (X, y) in tests.items()
    }
    return {"fit_seconds": round(fit_s, 2), "epochs": len(model.history_), **aucs}


def main() -> None:
    X_train, X_test, y_train, y_test = data()
    X_train, y_train = X_train[:TRAIN_ROWS], y_train[:TRAIN_ROWS]  # split shuffled
    X_test, y_test = X_test[:TEST_ROWS], y_test[:TEST_ROWS]
    no_text = X_test.assign(**{c: None for c in TEXT})
    tests = {"roc_auc": (X_test, y_test), "roc_auc_no_text": (no_text, y_test)}
    for fusion in ("concat", "cross_attention"):  # fill the cache: pooled, tokens
        fit_score(fusion, 0, X_train, y_train, tests)
    rows, summary = [], []
    for fusion in sorted(FUSIONS):
        runs = [fit_score(fusion, s, X_train, y_train, tests) for s in SEEDS]
        for seed, run in zip(SEEDS, runs, strict=True):
            rows.append({"bench": "fusion", "fusion": fusion, "seed": seed, **run})
            print(json.dumps(rows[-1]), flush=True)
        summary.append(summarise(fusion, runs))
    for dropout in (0.0, 0.3):
        params = {"fusion_params": {"modality_dropout": dropout}}
        runs = [
            fit_score("concat", s, X_train, y_train, tests, **params) for s in SEEDS
        ]
        summary.append(summarise(f"concat, modality_dropout={dropout}", runs))
    for row in summary:
        print(json.dumps(row), flush=True)
    RESULTS.mkdir(exist_ok=True)
    result = {
        "machine": machine(),
        "rows": summary,
        "runs": rows,
        "peak_rss_mb": peak_rss_mb(),
    }
    (RESULTS / "fusion.json").write_text(json.dumps(result, indent=1))


def summarise(name: str, runs: list[dict]) -> dict:
    auc = [r["roc_auc"] for r in runs]
    no_text = [r["roc_auc_no_text"] for r in runs]
    return {
        "bench": "fusion",
        "model": name,
        "roc_auc": statistics.mean(auc),
        "roc_auc_std": statistics.stdev(auc),
        "roc_auc_no_text": statistics.mean(no_text),
        "auc_drop_without_text": statistics.mean(auc) - statistics.mean(no_text),
        "fit_seconds": statistics.mean(r["fit_seconds"] for r in runs),
    }


if __name__ == "__main__":
    main()
