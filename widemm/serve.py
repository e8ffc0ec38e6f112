"""A prediction service over a fitted model: FastAPI on uvicorn.

``create_app(model)`` returns an ASGI app to run with ``widemm serve DIR`` or to
mount in your own service. Routes:

- ``GET /health``: ``{"status": "ok"}``.
- ``GET /metadata``: columns (role, dtype at fit), task, classes, settings.
- ``POST /predict``: rows as JSON, either a list of records
  (``[{"age": 39, ...}, ...]``) or pandas' ``split`` orient (``{"columns": [...],
  "data": [[...], ...], "index": [...]}``); or a multipart form whose ``data``
  part holds that JSON and whose file parts are images, an image column's value
  naming its file part. Returns predictions (and class probabilities).
- ``POST /explain``: the same input, at most ``max_explain_rows`` rows; returns
  each row's base value, output and attributions.

Bad requests get a 4xx that names the problem (a missing or unknown column, a
value a column cannot hold, a body over ``max_body_bytes``), never a 500.
Non-finite numbers are sent as null (JSON has no NaN). Concurrent ``/predict``
requests are batched: one thread takes every request waiting (up to
``max_rows`` rows, the same columns) and predicts them in one model call, then
answers each; a request whose rows fail is retried alone, so one client's bad
value never fails another's. Model calls hold a lock (the feature cache is
shared state). ``widemm serve --workers N`` runs N processes.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import queue
import threading
import time
from collections.abc import AsyncIterator
from concurrent.futures import Future
from contextlib import asynccontextmanager
from typing import Any

import numpy as np
import pandas as pd
from fastapi import FastAPI, Request  # the [serve] extra; FastAPI reads these
from fastapi.concurrency import run_in_threadpool  # annotations at run time
from fastapi.responses import JSONResponse

from widemm.contract import EXPLANATION, PREDICTION, describe, request_body, responses

# widemm raises ValueError for every fault of the input (a column, a value, a
# file, a size), naming it: a 422. Anything else is a fault of the service: 500.
CLIENT_ERRORS = (ValueError,)


def create_app(
    model: Any,
    *,
    max_body_bytes: int = 20_000_000,
    max_rows: int = 10_000,
    max_explain_rows: int = 20,
) -> FastAPI:
    """Return the FastAPI app serving ``model`` (a fitted widemm estimator)."""
    lock = threading.Lock()
    batcher = Batcher(model, lock, max_rows)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        batcher.stop()  # graceful shutdown: answer what is queued, then end

    app = FastAPI(title=f"widemm {type(model).__name__}", lifespan=lifespan)
    metadata = describe(model)

    def reply(content: Any, status: int = 200) -> JSONResponse:
        return JSONResponse(_finite(content), status_code=status)

    async def rows(request: Request, limit: int) -> pd.DataFrame | Records:
        size = int(request.headers.get("content-length") or 0)
        if size > max_body_bytes:
            raise _TooLarge(size, max_body_bytes)
        if request.headers.get("content-type", "").startswith("multipart/"):
            form = await request.form()
            files = {
                k: await v.read() for k, v in form.multi_items() if hasattr(v, "read")
            }
            text = form.get("data")
            frame = to_frame(json.loads(str(text)) if text is not None else None)
        else:
            body = await request.body()
            if len(body) > max_body_bytes:
                raise _TooLarge(len(body), max_body_bytes)
            payload = json.loads(body)
            if Records.holds(payload) and not model.schema_.image_cols:
                frame = Records(payload)  # made a frame with its batch
            else:
                frame, files = to_frame(payload), {}
        if isinstance(frame, pd.DataFrame):
            frame = _attach_files(frame, files, model.schema_.image_cols)
        if len(frame) > limit:
            raise ValueError(f"{len(frame)} rows in one request; the limit is {limit}.")
        return frame

    @app.exception_handler(_TooLarge)
    async def too_large(request: Request, err: _TooLarge) -> JSONResponse:
        return reply({"detail": str(err)}, 413)

    @app.exception_handler(json.JSONDecodeError)
    async def bad_json(request: Request, err: json.JSONDecodeError) -> JSONResponse:
        return reply({"detail": f"The body is not valid JSON: {err}"}, 400)

    for error in CLIENT_ERRORS:

        @app.exception_handler(error)
        async def unprocessable(request: Request, err: Exception) -> JSONResponse:
            return reply({"detail": str(err)}, 422)

    @app.get("/health")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/metadata")
    def meta() -> JSONResponse:
        return reply(metadata)

    @app.post(
        "/predict",
        openapi_extra={"requestBody": request_body(metadata, max_rows)},
        responses=responses(PREDICTION),
    )
    async def predict(request: Request) -> JSONResponse:
        frame = await rows(request, max_rows)
        return reply(await asyncio.wrap_future(batcher.submit(frame)))

    @app.post(
        "/explain",
        openapi_extra={"requestBody": request_body(metadata, max_explain_rows)},
        responses=responses(EXPLANATION),
    )
    async def explain(request: Request) -> JSONResponse:
        frame = _as_frame(await rows(request, max_explain_rows))

        def run() -> dict[str, Any]:
            with lock:
                e = model.explain(frame)
            return {
                "output": e.output_name,
                "base_value": e.base_value.tolist(),
                "value": e.output.tolist(),
                "attributions": e.values.to_dict(orient="records"),
            }

        return reply(await run_in_threadpool(run))

    return app


class Batcher:
    """Predict the requests waiting at once in one model call, on one thread.

    ``submit(frame)`` returns a future of that frame's ``predictions``. The
    thread takes the first waiting request and every other one with the same
    columns, up to ``max_rows`` rows; when requests come close together (the
    last batch began under 20 ms before), it first waits up to ``wait`` seconds
    for more (a model call holds the GIL: the event loop parses them while it
    waits; a lone request never waits). It predicts
    them together and splits the answer. If that call fails, each request is
    predicted alone, so the error reaches only the request that caused it.
    """

    def __init__(
        self, model: Any, lock: threading.Lock, max_rows: int, wait: float = 0.004
    ) -> None:
        self.model, self.lock, self.max_rows, self.wait = model, lock, max_rows, wait
        self.last = 0.0  # when the last batch started
        self.queue: queue.Queue[Any] = queue.Queue()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def submit(self, frame: pd.DataFrame | Records) -> Future[dict[str, Any]]:
        future: Future[dict[str, Any]] = Future()
        self.queue.put((frame, future))
        return future

    def stop(self) -> None:
        self.queue.put(None)
        self.thread.join(timeout=30)

    def _run(self) -> None:
        held: list[Any] = []  # taken from the queue, for the next batch
        while True:
            item = held.pop(0) if held else self.queue.get()
            if item is None:
                return
            batch, rows = [item], len(item[0])
            now = time.perf_counter()
            busy = now - self.last < 0.02  # requests came 20 ms apart or closer
            deadline, self.last = now + (self.wait if busy else 0.0), now
            while rows < self.max_rows:
                try:  # when busy, wait a little for more (parsed meanwhile)
                    other = self.queue.get(
                        timeout=max(deadline - time.perf_counter(), 0)
                    )
                except queue.Empty:
                    break
                if other is None or _columns(other[0]) != _columns(item[0]):
                    held.append(other)  # another shape (or the stop): later
                    break
                batch.append(other)
                rows += len(other[0])
            self._answer(batch)

    def _answer(self, batch: list[tuple[Any, Future[Any]]]) -> None:
        parts = [part for part, _ in batch]
        if all(isinstance(p, Records) for p in parts):  # one frame for all
            rows = [row for p in parts for row in p.rows]
            frame = pd.DataFrame.from_records(rows, columns=list(_columns(parts[0])))
        else:
            frame = pd.concat([_as_frame(p) for p in parts], ignore_index=True)
        try:
            with self.lock:
                both = predictions(self.model, frame)
        except Exception as err:
            if len(batch) == 1:
                batch[0][1].set_exception(err)
                return
            for one in batch:
                self._answer([one])
            return
        start = 0
        for frame, future in batch:
            part = {k: v[start : start + len(frame)] for k, v in both.items()}
            records = isinstance(frame, Records)
            part["index"] = list(range(len(frame))) if records else frame.index.tolist()
            future.set_result(part)
            start += len(frame)


class Records:
    """A request's JSON records, made a DataFrame only with its whole batch."""

    def __init__(self, rows: list[dict[str, Any]]) -> None:
        self.rows = rows
        self.columns = tuple(dict.fromkeys(k for row in rows for k in row))

    @staticmethod
    def holds(payload: Any) -> bool:
        """Tell whether ``payload`` is a non-empty list of records (JSON objects)."""
        return (
            isinstance(payload, list)
            and len(payload) > 0
            and all(isinstance(r, dict) for r in payload)
        )

    def __len__(self) -> int:
        return len(self.rows)


def _columns(part: pd.DataFrame | Records) -> tuple[Any, ...]:
    """Return a request's columns (requests batch only with the same ones)."""
    return tuple(part.columns)


def _as_frame(part: pd.DataFrame | Records) -> pd.DataFrame:
    """Return a request's rows as a DataFrame."""
    if isinstance(part, Records):
        return pd.DataFrame.from_records(part.rows, columns=list(part.columns))
    return part


class _TooLarge(Exception):
    def __init__(self, size: int, limit: int) -> None:
        super().__init__(f"The body has {size:,} bytes; the limit is {limit:,}.")


def to_frame(payload: Any) -> pd.DataFrame:
    """Rows from JSON: a list of records, or pandas' ``split`` orient."""
    if isinstance(payload, list) and all(isinstance(r, dict) for r in payload):
        return pd.DataFrame.from_records(payload)
    if isinstance(payload, dict) and {"columns", "data"} <= set(payload):
        columns, data = payload["columns"], payload["data"]
        index = payload.get("index")
        if not isinstance(columns, list) or not all(_label(c) for c in columns):
            raise ValueError('"columns" must be a list of column names.')
        if not isinstance(data, list) or not all(
            isinstance(row, list) and len(row) == len(columns) for row in data
        ):
            raise ValueError(
                f'"data" must be a list of rows, each a list of {len(columns)} '
                "values (one a column)."
            )
        if index is not None and (
            not isinstance(index, list)
            or len(index) != len(data)
            or not all(_label(i) for i in index)
        ):
            raise ValueError(
                f'"index" must be a list of {len(data)} labels (one a row).'
            )
        return pd.DataFrame(data, columns=columns, index=index)
    raise ValueError(
        'Send rows as a JSON list of records ([{"col": value, ...}, ...]) or as '
        '{"columns": [...], "data": [[...], ...]} (pandas\' split orient).'
    )


def _label(value: Any) -> bool:
    """Tell whether ``value`` can name a row or a column (a string or a number)."""
    return isinstance(value, str | int | float) and not isinstance(value, bool)


def predictions(model: Any, frame: pd.DataFrame) -> dict[str, Any]:
    """Predict the rows of ``frame`` as JSON (see ``targets.Outputs.records``)."""
    return model.outputs_.records(model.logits(frame), frame.index)


def _attach_files(
    frame: pd.DataFrame, files: dict[str, bytes], image_cols: Any
) -> pd.DataFrame:
    """Replace each image value, the name of an uploaded file part, by its bytes.

    A name that is no uploaded part is refused: the service never reads a path
    a client names on the server's disk.
    """
    frame = frame.copy()
    for col in image_cols:
        if col not in frame:
            continue
        for v in frame[col]:
            if isinstance(v, str) and v not in files:
                raise ValueError(
                    f"Column {col!r}: {v!r} is no uploaded file. Send images as file "
                    "parts of a multipart request, the column naming each part."
                )
        frame[col] = [files.get(v) if isinstance(v, str) else v for v in frame[col]]
    return frame


def _finite(value: Any) -> Any:
    """JSON-safe: NaN and inf become None, numpy scalars plain numbers."""
    if isinstance(value, dict):
        return {str(k): _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def serve(
    folder: str, host: str = "127.0.0.1", port: int = 8000, workers: int = 1
) -> None:
    """Load the model saved in ``folder`` and serve it until stopped (Ctrl-C).

    ``workers`` > 1 runs that many processes (uvicorn's), each with its model.
    """
    import uvicorn

    import widemm

    if workers > 1:
        os.environ["WIDEMM_SERVE_MODEL"] = str(folder)
        uvicorn.run(
            "widemm.serve:app_from_environment",
            factory=True,
            host=host,
            port=port,
            workers=workers,
            log_level="info",
        )
        return
    uvicorn.run(create_app(widemm.load(folder)), host=host, port=port, log_level="info")


def app_from_environment() -> FastAPI:
    """Return the app for the model in ``$WIDEMM_SERVE_MODEL`` (in each worker)."""
    import widemm

    return create_app(widemm.load(os.environ["WIDEMM_SERVE_MODEL"]))
