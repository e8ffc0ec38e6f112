"""Render bench/results/*.json as Markdown tables into the docs and bench/README.md.

A table goes between ``<!-- bench:NAME -->`` and ``<!-- /bench:NAME -->`` in
``docs/**/*.md`` or ``bench/README.md``, so the numbers there always come from the
last benchmark run.
"""

from __future__ import annotations

import json
import re

from common import RESULTS, ROOT

COLUMNS = {
    "model": "model",
    "runs": "runs",
    "batch_size": "batch size",
    "num_workers": "workers",
    "train_rows": "train rows",
    "roc_auc": "ROC AUC",
    "roc_auc_std": "± (3 seeds)",
    "roc_auc_no_text": "ROC AUC, text removed",
    "auc_drop_without_text": "AUC drop without text",
    "accuracy": "accuracy",
    "r2": "R²",
    "rmse": "RMSE",
    "prep_seconds": "prep s",
    "fit_seconds": "fit s",
    "train_rows_per_s": "train rows/s",
    "seconds_per_epoch": "s/epoch",
    "uncached_seconds_per_epoch": "s/epoch uncached",
    "cache_speedup": "cache speed-up",
    "epochs": "epochs",
    "predict_rows_per_s": "predict rows/s",
    "latency_p50_ms": "1-row p50 ms",
    "latency_p99_ms": "1-row p99 ms",
    "images_per_s": "images/s",
    "rows_explained": "rows explained",
    "explain_seconds": "explain s",
    "rows_per_s": "rows/s",
    "max_sum_error": "max sum error",
    "tokens_per_row": "tokens/row",
    "top_columns": "top columns",
    "spearman_vs_widemm_permutation": "Spearman vs widemm permutation",
    "spearman_vs_widemm_gradient": "Spearman vs widemm gradient",
    "spearman_gradient_vs_permutation": "Spearman gradient vs permutation",
    "base_value_min": "base value min",
    "base_value_max": "base value max",
    "base_value_spread": "base value spread",
    "min_spearman_between_seeds": "min Spearman between seeds",
    "max_sign_flip_share": "max share of signs flipped",
    "seconds_per_explain": "s per explain",
    "requests_per_s": "requests/s",
    "rss_after_warmup_mb": "server RSS MiB after warm-up",
    "rss_end_mb": "server RSS MiB at the end",
    "rss_growth": "RSS growth",
    "p99_after_warmup_ms": "p99 ms after warm-up",
    "p99_end_ms": "p99 ms at the end",
    "p99_ms": "p99 ms",
    "workers_before": "workers before",
    "workers_after": "workers after",
    "replacement_started_s": "replacement started after s",
    "retried": "connections retried",
    "server_errors": "5xx",
    "errors": "errors",
    "wrong": "wrong answers",
    "genre_auc_micro": "Genre micro AUC",
    "genre_auc_macro": "Genre macro AUC",
    "meter_r2": "Meter R²",
    "metacritic_r2": "Metacritic R²",
    "minority_recall": "minority recall",
    "ece": "ECE",
    "coverage_90": "90% interval coverage",
    "interval_width": "interval width",
    "widemm, no line": "widemm, no line (trees=False)",
    "widemm": "widemm",
    "HGB": "HGB",
    "LightGBM": "LightGBM",
    "CatBoost": "CatBoost",
    "TF-IDF+LR": "TF-IDF + LR (C by CV)",
    "linear": "linear model (CV)",
    "line - no line": "line - no line",
    "widemm, no line fit s": "no line fit s",
    "widemm fit s": "widemm fit s",
    "linear fit s": "linear fit s",
    "HGB fit s": "HGB fit s",
    "mean": "mean",
    "ratio": "widemm / HGB",
    "ratio_best": "widemm / best reference",
    "std": "± (3 seeds)",
    "widemm_fit_seconds": "widemm fit s",
    "accuracy_without": "accuracy, no pretraining",
    "accuracy_with": "accuracy, pretrained",
    "gain": "gain",
    "seeds_gained": "seeds gained (of 3)",
    "std_with": "± pretrained (3 seeds)",
    "seeds_kept_pretrained": "pretrained start kept (of 3)",
    "fit_seconds_without": "fit s",
    "pretrain_and_fit_seconds": "pretrain + fit s",
    "recall_at_1": "recall@1",
    "recall_at_5": "recall@5",
    "hgb_fit_seconds": "HGB fit s",
    "lightgbm_fit_seconds": "LightGBM fit s",
    "catboost_fit_seconds": "CatBoost fit s",
    "tf-idf+lr_fit_seconds": "TF-IDF + LR fit s",
    "fit_seconds_ratio": "widemm fit s / HGB fit s",
    "widemm_warmup_seconds": "widemm warm-up fit s (400 rows, 1 epoch)",
    "train_gflop_per_s": "widemm training GFLOP/s",
    "probe_gflop_per_s_fp32": "matmul probe GFLOP/s, fp32",
    "probe_gflop_per_s_bf16": "matmul probe GFLOP/s, bf16",
    "export_seconds": "export s",
    "max_abs_diff": "max logit difference",
    "seeds": "seeds",
    "single_task_mean": "single-task (mean over the seeds)",
    "multi_task_mean": "multi-task (mean over the seeds)",
    "difference": "multi - single",
    "difference_se": "± (standard error of the difference)",
    "seeds_multi_ahead": "seeds multi-task >= single-task",
    "fit_seconds_single": "single-task fit s",
    "fit_seconds_multi": "multi-task fit s",
    "fixed": "fixed weights (default)",
    "uncertainty": "uncertainty",
    "famo": "FAMO",
    "nash": "Nash-MTL",
    "gradnorm": "GradNorm",
    "seeds_nash_ahead": "seeds Nash-MTL >= fixed (of 3)",
    "seeds_gradnorm_ahead": "seeds GradNorm >= fixed (of 3)",
    "fit_seconds_fixed": "fixed fit s",
    "fit_seconds_uncertainty": "uncertainty fit s",
    "fit_seconds_famo": "FAMO fit s",
    "fit_seconds_nash": "Nash-MTL fit s",
    "fit_seconds_gradnorm": "GradNorm fit s",
    "peak_rss_mb": "peak RSS MiB",
}


# bookkeeping, and measurements too long for a table cell (in the JSON)
HIDDEN = {"candidate", "bench", "rows", "windows"}


def table(result: dict) -> str:
    rows = result["rows"]
    keys = [k for k in COLUMNS if any(row.get(k) is not None for row in rows)]
    # A table's own columns (a target per column): as named, before the memory.
    own = [k for row in rows for k in row if k not in COLUMNS and k not in HIDDEN]
    if own:
        at = keys.index("fit_seconds") if "fit_seconds" in keys else len(keys)
        keys[at:at] = list(dict.fromkeys(own))
    lines = [
        "| " + " | ".join(COLUMNS.get(k, k) for k in keys) + " |",
        "|" + "---|" * len(keys),
    ]
    for row in rows:
        cells = (fmt(row.get(k)) for k in keys)
        lines.append("| " + " | ".join(cells) + " |")
    m = result["machine"]
    lines.append(
        f"\n{m['cores']} CPU cores ({m['cpu']}), Python {m['python']}, "
        f"torch {m['torch']}."
    )
    return "\n".join(lines)


def fmt(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.4g}"
    return str(value)


def headline(quality: dict) -> str:
    """The README's table: the quality suite's rows with a reference beside."""
    keep = ("model", "widemm", "HGB", "LightGBM", "CatBoost", "TF-IDF+LR")
    rows = [
        {k: row.get(k) for k in (*keep, "widemm_fit_seconds", "hgb_fit_seconds")}
        for row in quality["rows"]
        if row.get("HGB") is not None or row.get("TF-IDF+LR") is not None
    ]
    return table({"machine": quality["machine"], "rows": rows})


def main() -> None:
    tables = {
        p.stem: table(json.loads(p.read_text())) for p in sorted(RESULTS.glob("*.json"))
    }
    tables["headline"] = headline(json.loads((RESULTS / "quality.json").read_text()))
    pages = [
        ROOT / "README.md",
        *sorted((ROOT / "docs").rglob("*.md")),
        ROOT / "bench" / "README.md",
    ]
    for readme in pages:
        text = readme.read_text()
        for name, body in tables.items():
            pattern = re.compile(
                rf"(<!-- bench:{name} -->\n).*?(<!-- /bench:{name} -->)", re.S
            )
            text = pattern.sub(lambda m, body=body: f"{m[1]}{body}\n{m[2]}", text)
        readme.write_text(text)


if __name__ == "__main__":
    main()
