"""The prediction service, run as `widemm serve` on 127.0.0.1 and called over HTTP."""

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.conftest import EMOJI, SERVED_COLUMNS
from widemm import WideDeepClassifier

ROOT = Path(__file__).resolve().parents[1]
COLUMNS = SERVED_COLUMNS


@pytest.fixture(scope="module")
def server(emoji_model, tmp_path_factory):
    model = emoji_model
    folder = tmp_path_factory.mktemp("served")
    model.save(folder)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"}
    process = subprocess.Popen(
        [sys.executable, "-m", "widemm", "serve", str(folder), "--port", str(port)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    for _ in range(120):  # up to 60 s to start
        try:
            urllib.request.urlopen(f"{url}/health", timeout=1)
            break
        except OSError:
            time.sleep(0.5)
    yield url, model
    process.terminate()
    process.wait(timeout=30)


def call(url, path, body=None, content_type="application/json"):
    """(status, parsed JSON) of a GET, or of a POST of ``body`` (bytes)."""
    request = urllib.request.Request(
        f"{url}{path}", data=body, method="POST" if body is not None else "GET"
    )
    if body is not None:
        request.add_header("Content-Type", content_type)
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def multipart(records, files):
    boundary = uuid.uuid4().hex
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="data"\r\n\r\n'
        f"{json.dumps(records)}\r\n".encode()
    ]
    for name, content in files.items():
        parts.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; '
            f'filename="{name}.png"\r\nContent-Type: image/png\r\n\r\n'.encode()
            + content
            + b"\r\n"
        )
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


def uploads(rows, n):
    """The first n rows as records whose images are uploaded file parts."""
    records, files = [], {}
    for i, (_, row) in enumerate(rows[COLUMNS].head(n).iterrows()):
        files[f"img{i}"] = (EMOJI / row["image_path"]).read_bytes()
        records.append({**row.to_dict(), "image_path": f"img{i}"})
    return records, files


def test_health_and_metadata(server):
    url, model = server
    assert call(url, "/health") == (200, {"status": "ok"})
    status, meta = call(url, "/metadata")
    assert status == 200
    assert meta["classes"] == model.classes_.tolist()
    assert {c["name"]: c["role"] for c in meta["columns"]} == {
        "image_path": "image", "name": "text", "added_in": "cont"
    }  # fmt: skip


def test_predict_with_uploaded_images_matches_the_model(server, emoji_rows):
    url, model = server
    records, files = uploads(emoji_rows, 4)
    status, out = call(url, "/predict", *multipart(records, files))
    assert status == 200, out
    expected = model.predict_proba(emoji_rows[COLUMNS].head(4))
    got = [[p[str(c)] for c in model.classes_] for p in out["probabilities"]]
    np.testing.assert_allclose(got, expected, atol=1e-6)
    status, out = call(url, "/explain", *multipart(records, files))
    assert status == 200, out
    assert set(out["attributions"][0]) == set(COLUMNS)


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        (b"not json", 400, "not valid JSON"),
        (b'{"rows": 1}', 422, "list of records"),
        (json.dumps([{"name": "x", "added_in": 1.0}]).encode(), 422, "image_path"),
        (json.dumps([{"image_path": "/etc/passwd", "name": "x", "added_in": 1.0}])
         .encode(), 422, "no uploaded file"),
        (json.dumps([{"name": "x", "added_in": 1.0, "image_path": None,
                      "shoe": 3}]).encode(), 422, "shoe"),
        (b'{"columns": false, "data": [[1]]}', 422, '"columns" must be a list'),
        (b'{"columns": ["name"], "data": [[1, 2]]}', 422, "a list of 1 values"),
        (b'{"columns": ["name"], "data": [["a"]], "index": [1, 2]}', 422,
         '"index" must be a list of 1 labels'),
        (json.dumps([{"name": ["x"], "added_in": 1.0, "image_path": None}])
         .encode(), 422, "'name' holds list values"),
        (json.dumps([{"name": "x", "added_in": False, "image_path": None}])
         .encode(), 422, "'added_in' is continuous but row 0 holds False"),
    ],
)  # fmt: skip
def test_bad_payloads_get_a_clear_4xx(server, body, status, message):
    url, _ = server
    got, out = call(url, "/predict", body)
    assert got == status
    assert message in out["detail"]


def test_wrong_types_nan_and_huge_bodies(server, emoji_rows):
    url, _ = server
    records, files = uploads(emoji_rows, 1)
    wrong = [{**records[0], "added_in": "soon"}]
    status, out = call(url, "/predict", *multipart(wrong, files))
    assert status == 422
    assert "'added_in' is continuous" in out["detail"]
    missing = [{**records[0], "added_in": float("nan"), "name": None}]
    status, out = call(url, "/predict", *multipart(missing, files))
    assert status == 200  # NaN and null are missing values, handled
    assert out["prediction"][0] in {"Flags", "Food & Drink", "Smileys & Emotion"}
    # A body announced over the limit is refused before it is read.
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=30) as conn:
        conn.sendall(
            b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json"
            b"\r\nContent-Length: 21000000\r\n\r\n["
        )
        reply = b""
        while b"limit" not in reply and (chunk := conn.recv(65536)):
            reply += chunk
    assert reply.startswith(b"HTTP/1.1 413")
    assert b"the limit is 20,000,000" in reply


def test_concurrent_requests_agree(server, emoji_rows):
    url, _ = server
    records, files = uploads(emoji_rows, 2)
    body = multipart(records, files)
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda _: call(url, "/predict", *body), range(24)))
    assert {status for status, _ in results} == {200}
    # batched with other requests or not, the same answer (float32 rounding apart)
    assert len({json.dumps(out["prediction"]) for _, out in results}) == 1
    first = results[0][1]["probabilities"]
    for _, out in results:
        for got, want in zip(out["probabilities"], first, strict=True):
            np.testing.assert_allclose(
                list(got.values()), list(want.values()), atol=1e-6
            )


def test_batched_requests_each_get_their_own_answer_and_errors(server, emoji_rows):
    # 32 concurrent one-row requests (batched into few model calls), every 8th
    # with a value its column cannot hold: those alone get a 422.
    url, model = server
    table = emoji_rows[["added_in", "name"]].head(32).reset_index(drop=True)
    bodies = []
    for i, row in table.iterrows():
        record = {"image_path": None, "added_in": row["added_in"], "name": row["name"]}
        if i % 8 == 7:
            record["added_in"] = "not a number"
        bodies.append(json.dumps([record]).encode())
    with ThreadPoolExecutor(16) as pool:
        results = list(pool.map(lambda b: call(url, "/predict", b), bodies))
    for i, (status, out) in enumerate(results):
        if i % 8 == 7:
            assert status == 422
            assert "added_in" in out["detail"]
        else:
            assert status == 200
            frame = table.iloc[[i]].assign(image_path=None)[COLUMNS]
            expected = model.predict_proba(frame)[0]
            got = [out["probabilities"][0][str(c)] for c in model.classes_]
            np.testing.assert_allclose(got, expected, atol=1e-6)
            assert out["index"] == [0]


@pytest.mark.slow
def test_workers_serve_from_several_processes(server, emoji_rows, tmp_path):
    _, model = server
    model.save(tmp_path / "m")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"}
    command = [sys.executable, "-m", "widemm", "serve", str(tmp_path / "m"),
               "--port", str(port), "--workers", "2"]  # fmt: skip
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(180):
            try:
                urllib.request.urlopen(f"{url}/health", timeout=1)
                break
            except OSError:
                time.sleep(0.5)
        frame = emoji_rows[COLUMNS].head(4).assign(image_path=None)
        body = json.dumps(frame.to_dict(orient="records")).encode()
        with ThreadPoolExecutor(4) as pool:
            results = list(pool.map(lambda _: call(url, "/predict", body), range(8)))
        assert {status for status, _ in results} == {200}
        expected = model.predict(frame).tolist()
        assert all(out["prediction"] == expected for _, out in results)
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_batcher_merges_json_records_per_column_set_and_keeps_errors_apart():
    import threading

    from widemm.datasets import load_adult
    from widemm.serve import Batcher, Records

    df = load_adult().sample(600, random_state=0)
    y = df.pop("income")
    model = WideDeepClassifier(max_epochs=1, random_state=0).fit(df, y)
    rows = df.head(24).reset_index(drop=True)
    records = []
    for i, row in rows.iterrows():
        record = {k: (None if pd.isna(v) else v) for k, v in row.items()}
        if i % 8 == 3:
            del record["occupation"]  # a column missing: never filled from others
        if i % 8 == 5:
            record["age"] = "old"  # a bad value: fails alone
        records.append(Records([record]))
    batcher = Batcher(model, threading.Lock(), max_rows=10_000, wait=0.05)
    futures = [batcher.submit(r) for r in records]  # queued together: few batches
    batcher.stop()
    for i, future in enumerate(futures):
        if i % 8 in (3, 5):
            with pytest.raises(ValueError, match="occupation" if i % 8 == 3 else "age"):
                future.result(timeout=30)
        else:
            out = future.result(timeout=30)
            expected = model.predict_proba(rows.iloc[[i]])[0]
            got = [out["probabilities"][0][str(c)] for c in model.classes_]
            np.testing.assert_allclose(got, expected, atol=1e-6)
            assert out["index"] == [0]


def test_a_fault_of_the_service_is_a_500_not_the_clients_422(emoji_rows):
    """Only bad input (a ValueError naming it) is the client's; a bug is ours."""
    from fastapi.testclient import TestClient

    from widemm.serve import create_app

    model = WideDeepClassifier(image_root=str(EMOJI), image_size=32, max_epochs=1)
    model.fit(emoji_rows[COLUMNS].head(60), emoji_rows["category"].head(60))
    records = emoji_rows[COLUMNS].head(2).assign(image_path=None).to_dict("records")
    with TestClient(create_app(model), raise_server_exceptions=False) as client:
        bad = client.post("/predict", json=[{**records[0], "added_in": "soon"}])
        assert bad.status_code == 422
        assert "added_in" in bad.json()["detail"]
        for bug in (TypeError("internal"), KeyError("internal")):

            def broken(X, bug=bug):
                raise bug

            model.logits = broken
            answer = client.post("/predict", json=records)
            assert answer.status_code == 500, (bug, answer.text)
