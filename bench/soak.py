"""The service under long and hostile use: a soak run, and a worker killed under load.

    python bench/soak.py    # JSON lines; writes results/soak.json

Fits the default classifier on the fixed Adult split, saves it, and serves it with
``widemm serve`` on 127.0.0.1 (bounded runs that stop by themselves):

- ``soak``: 1 worker, 50,000 one-row ``POST /predict`` requests from 8 clients on
  keep-alive connections, every test row in turn. The server's RSS is read from
  ``/proc`` every 0.5 s and latencies are cut into 10 windows of 5,000 requests;
  the first window is the warm-up. Flat: the last window's RSS within 5% of the
  second's.
- ``kill``: 2 workers, 20,000 requests; after 4,000, one worker gets SIGKILL.
  Reported: when uvicorn's supervisor started its replacement, the connections
  that failed (their client retries once on a new connection, as client libraries
  do), 5xx answers, and wrong answers.

Every answer is checked against in-process ``predict_proba`` of its row
(``atol`` 1e-5): ``wrong`` counts 200s with other probabilities, ``errors`` the
requests without a 200 after the retry.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
from common import emit, save_results, split
from serve import Client, Reply, served

from widemm import WideDeepClassifier

N_CLIENTS, WINDOW = 8, 5000
SOAK_REQUESTS, KILL_REQUESTS, KILL_AFTER = 50_000, 20_000, 4000


def main() -> None:
    X_train, X_test, y_train, _ = split("adult", "income")
    model = WideDeepClassifier(random_state=0).fit(X_train, y_train)
    folder = tempfile.mkdtemp()
    model.save(folder)
    rows = X_test.to_dict(orient="records")
    bodies = [json.dumps([r]).encode() for r in rows]
    expected = model.predict_proba(X_test)[:, 1]
    positive = str(model.classes_[1])
    check = Checker(bodies, expected, positive)
    results = [soak(folder, check), kill(folder, check)]
    for row in results:
        emit(row)
    save_results("soak", results)


class Checker:
    """Send request ``i`` (row ``i % n``); retry once; tell right from wrong."""

    def __init__(self, bodies: list[bytes], expected: np.ndarray, positive: str):
        self.bodies, self.expected, self.positive = bodies, expected, positive

    def run(self, client: Client, i: int) -> tuple[Reply, str]:
        """The reply and its verdict: ``ok``, ``retried``, ``wrong`` or ``error``."""
        row = i % len(self.bodies)
        reply, verdict = client.send(self.bodies[row]), "ok"
        if reply.status == 0:  # the connection failed: retry on a new one
            reply, verdict = client.send(self.bodies[row]), "retried"
        if reply.status != 200:
            return reply, "error"
        got = json.loads(reply.body)["probabilities"][0][self.positive]
        return reply, verdict if abs(got - self.expected[row]) <= 1e-5 else "wrong"


def soak(folder: str, check: Checker) -> dict[str, Any]:
    with served(folder, workers=1) as (port, server):
        client = Client(port)
        rss: list[tuple[int, float]] = []  # (requests sent, RSS MiB)
        sent = [0]
        stop = threading.Event()

        def sample() -> None:
            while not stop.wait(0.5):
                rss.append((sent[0], rss_mb(server.pid)))

        def one(i: int) -> tuple[Reply, str]:
            out = check.run(client, i)
            sent[0] += 1
            return out

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        start = time.perf_counter()
        with ThreadPoolExecutor(N_CLIENTS) as pool:
            results = list(pool.map(one, range(SOAK_REQUESTS)))
        seconds = time.perf_counter() - start
        stop.set()
        sampler.join()
    windows = []
    for w in range(SOAK_REQUESTS // WINDOW):
        ms = np.array([r.ms for r, _ in results[w * WINDOW : (w + 1) * WINDOW]])
        inside = [m for n, m in rss if w * WINDOW <= n < (w + 1) * WINDOW]
        windows.append(
            {
                "p50_ms": round(float(np.percentile(ms, 50)), 2),
                "p99_ms": round(float(np.percentile(ms, 99)), 2),
                "rss_mb": round(max(inside), 1) if inside else None,
            }
        )
    settled, last = windows[1]["rss_mb"], windows[-1]["rss_mb"]
    return {
        "model": f"soak: 1 worker, {N_CLIENTS} clients, "
        f"{SOAK_REQUESTS:,} one-row requests",
        "requests_per_s": SOAK_REQUESTS / seconds,
        "rss_after_warmup_mb": settled,
        "rss_end_mb": last,
        "rss_growth": last / settled - 1,
        "p99_after_warmup_ms": windows[1]["p99_ms"],
        "p99_end_ms": windows[-1]["p99_ms"],
        **verdicts(results),
        "windows": windows,
    }


def kill(folder: str, check: Checker) -> dict[str, Any]:
    with served(folder, workers=2) as (port, server):
        client = Client(port)
        before = workers(server.pid)
        sent = [0]
        killed: dict[str, Any] = {}

        def one(i: int) -> tuple[Reply, str]:
            if i == KILL_AFTER:
                killed["pid"], killed["at"] = before[0], time.perf_counter()
                os.kill(before[0], signal.SIGKILL)
            out = check.run(client, i)
            sent[0] += 1
            return out

        def watch() -> None:  # when the supervisor starts the replacement
            while "replaced" not in killed and sent[0] < KILL_REQUESTS:
                if "at" in killed and set(workers(server.pid)) - set(before):
                    killed["replaced"] = time.perf_counter() - killed["at"]
                time.sleep(0.1)

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        with ThreadPoolExecutor(N_CLIENTS) as pool:
            results = list(pool.map(one, range(KILL_REQUESTS)))
        watcher.join()
        after = workers(server.pid)
    return {
        "model": f"kill: 2 workers, {N_CLIENTS} clients, {KILL_REQUESTS:,} requests, "
        f"one worker SIGKILLed after {KILL_AFTER:,}",
        "workers_before": len(before),
        "workers_after": len(after),
        "replacement_started_s": killed.get("replaced"),
        **verdicts(results),
        "p99_ms": float(np.percentile([r.ms for r, _ in results], 99)),
    }


def verdicts(results: list[tuple[Reply, str]]) -> dict[str, int]:
    said = [v for _, v in results]
    return {
        "retried": said.count("retried"),
        "server_errors": sum(r.status >= 500 for r, _ in results),
        "errors": said.count("error"),
        "wrong": said.count("wrong"),
    }


def workers(pid: int) -> list[int]:
    """The uvicorn worker processes under ``pid`` (multiprocessing's spawned)."""
    out = []
    for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split():
        cmdline = Path(f"/proc/{child}/cmdline").read_bytes()
        if b"spawn_main" in cmdline:
            out.append(int(child))
    return out


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


if __name__ == "__main__":
    sys.exit(main())
