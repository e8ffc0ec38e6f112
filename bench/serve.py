"""The prediction service under load: single Adult rows over HTTP on loopback.

    python bench/serve.py    # JSON lines; writes results/serve.json

Fits the default classifier on the fixed Adult split, saves it, starts
``widemm serve`` on 127.0.0.1 in a subprocess, then sends 2,000 one-row
``POST /predict`` requests from 8 concurrent clients, each on a keep-alive
connection as load-testing tools and client libraries use (a bounded run that
stops by itself), with 1 and with 2 worker processes, and compares with calling
``predict`` in-process. Reports p50/p99
latency, requests per second and errors.
"""

from __future__ import annotations

import http.client
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import NamedTuple

import numpy as np
from common import ROOT, emit, latency_ms, save_results, split

from widemm import WideDeepClassifier

N_REQUESTS, N_CLIENTS = 2000, 8


def main() -> None:
    X_train, X_test, y_train, _ = split("adult", "income")
    model = WideDeepClassifier(random_state=0).fit(X_train, y_train)
    folder = tempfile.mkdtemp()
    model.save(folder)
    bodies = [
        json.dumps(X_test.iloc[[i % len(X_test)]].to_dict(orient="records")).encode()
        for i in range(N_REQUESTS)
    ]
    rows = [load(folder, bodies, workers) for workers in (1, 2)]
    rows.append(
        {"model": "in-process predict, one row", **latency_ms(model.predict, X_test)}
    )
    for row in rows:
        emit(row)
    save_results("serve", rows)


def load(folder: str, bodies: list[bytes], workers: int) -> dict[str, object]:
    """Serve ``folder`` with ``workers`` processes; send ``bodies`` from 8 clients."""
    with served(folder, workers) as (port, _):
        client = Client(port)
        with ThreadPoolExecutor(N_CLIENTS) as pool:
            list(pool.map(client.send, bodies[:200]))  # warm up every worker
            start = time.perf_counter()
            results = list(pool.map(client.send, bodies))
        seconds = time.perf_counter() - start
    times = np.array([r.ms for r in results])
    return {
        "model": f"HTTP, {workers} worker(s), {N_CLIENTS} clients, "
        f"{N_REQUESTS} one-row requests",
        "latency_p50_ms": float(np.percentile(times, 50)),
        "latency_p99_ms": float(np.percentile(times, 99)),
        "requests_per_s": N_REQUESTS / seconds,
        "errors": sum(r.status != 200 for r in results),
    }


@contextmanager
def served(folder: str, workers: int) -> Iterator[tuple[int, subprocess.Popen[bytes]]]:
    """Run ``widemm serve folder`` on a free loopback port until it answers."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "widemm", "serve", folder, "--port", str(port),
               "--workers", str(workers)]  # fmt: skip
    server = subprocess.Popen(
        command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        for _ in range(240):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1)
                break
            except OSError:
                time.sleep(0.5)
        yield port, server
    finally:
        server.terminate()
        server.wait(timeout=30)


class Reply(NamedTuple):
    ms: float
    status: int  # 0: the connection failed
    body: bytes


class Client:
    """POST bodies to ``/predict``, one keep-alive connection per thread."""

    def __init__(self, port: int) -> None:
        self.port, self.local = port, threading.local()

    def send(self, body: bytes) -> Reply:
        local = self.local
        if not hasattr(local, "connection"):
            local.connection = http.client.HTTPConnection(
                "127.0.0.1", self.port, timeout=30
            )
        start = time.perf_counter()
        try:
            local.connection.request(
                "POST", "/predict", body, {"Content-Type": "application/json"}
            )
            response = local.connection.getresponse()
            status, answer = response.status, response.read()
        except OSError:  # a new connection next time
            local.connection.close()
            del local.connection
            status, answer = 0, b""
        return Reply((time.perf_counter() - start) * 1000, status, answer)


if __name__ == "__main__":
    main()
