"""What the prediction service takes and returns, for clients and its OpenAPI.

``describe(model)`` is the ``/metadata`` answer. ``request_body`` and
``responses`` are the JSON Schema of ``/predict`` and ``/explain``, written from
the fitted model's columns into the service's OpenAPI document, so a client
generator or a fuzzer (Schemathesis) knows each column's type.
"""

from __future__ import annotations

from typing import Any

_SCALAR = {"type": ["number", "string", "boolean", "null"]}
_NUMBER_STRING = {  # what pandas.to_numeric reads as a finite number
    "type": "string",
    "pattern": (
        r"^[ \t\n\r]*[-+]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][-+]?[0-9]+)?[ \t\n\r]*$"
    ),
}
_DETAIL = {
    "type": "object",
    "properties": {"detail": {"type": "string"}},
    "required": ["detail"],
}


def describe(model: Any) -> dict[str, Any]:
    """Describe what a client needs: columns, roles, dtypes, task, classes."""
    schema, summary = model.schema_, model.pipeline_.summary_.set_index("column")
    columns = [
        {"name": c, "role": schema.role(c), "dtype": summary.loc[c, "dtype"]}
        for c in model.feature_names_in_
    ]
    out: dict[str, Any] = {"model": type(model).__name__, "columns": columns}
    out["required"] = [c["name"] for c in columns if c["role"] != "ignored"]
    return out | model.outputs_.describe()


def request_body(meta: dict[str, Any], max_rows: int) -> dict[str, Any]:
    """Return the OpenAPI ``requestBody`` of ``/predict`` and ``/explain``.

    JSON: a list of records, one property a column (typed by its role; null
    is a missing value), or pandas' ``split`` orient. A
    multipart form: a ``data`` part holding that JSON, and one file part an
    image, which an image column's value names (JSON alone cannot carry images,
    so there an image value is null). ``meta``: the model's ``describe``.
    """
    values = {c["name"]: _value(c["role"]) for c in meta["columns"]}
    record = {
        "type": "object",
        "properties": values,
        "required": meta["required"],
        "additionalProperties": False,
    }
    records = {"type": "array", "items": record, "minItems": 1, "maxItems": max_rows}
    names = [str(c["name"]) for c in meta["columns"]]
    split = {
        "type": "object",
        "properties": {
            "columns": {
                "type": "array",
                "items": {"enum": names},
                "uniqueItems": True,
                "minItems": 1,
            },
            "data": {
                "type": "array",
                "items": {"type": "array", "items": _SCALAR},
                "minItems": 1,
                "maxItems": max_rows,
            },
            "index": {"type": "array", "items": {"type": ["string", "integer"]}},
        },
        "required": ["columns", "data"],
    }
    form = {
        "type": "object",
        "properties": {
            "data": {"type": "string", "contentMediaType": "application/json"}
        },
        "required": ["data"],
        "additionalProperties": {"type": "string", "format": "binary"},
    }
    return {
        "required": True,
        "content": {
            "application/json": {"schema": {"anyOf": [records, split]}},
            "multipart/form-data": {"schema": form},
        },
    }


def responses(answer: dict[str, Any]) -> dict[int | str, dict[str, Any]]:
    """Return the OpenAPI ``responses``: ``answer`` (a JSON Schema) and the 4xx."""
    error = {"content": {"application/json": {"schema": _DETAIL}}}
    return {
        200: {
            "description": "The answer",
            "content": {"application/json": {"schema": answer}},
        },
        400: {"description": "The body is not valid JSON", **error},
        413: {"description": "The body is larger than the service takes", **error},
        422: {"description": "A row, column or value the model cannot take", **error},
    }


PREDICTION = {
    "type": "object",
    "properties": {
        "index": {"type": "array"},
        "prediction": {"type": "array"},
        "probabilities": {"type": "array", "items": {"type": "object"}},
        "quantiles": {"type": "array", "items": {"type": "array"}},
    },
    "required": ["index", "prediction"],
}
EXPLANATION = {
    "type": "object",
    "properties": {
        "output": {"type": "string"},
        "base_value": {"type": "array", "items": {"type": ["number", "null"]}},
        "value": {"type": "array", "items": {"type": ["number", "null"]}},
        "attributions": {"type": "array", "items": {"type": "object"}},
    },
    "required": ["output", "base_value", "value", "attributions"],
}


def _value(role: str) -> dict[str, Any]:
    """Return the JSON Schema of one column's value (null: missing).

    Numbers may come as strings holding a number (as from a CSV); categories
    and text take any scalar (made a string); lists, objects and numbers'
    other strings are refused.
    """
    if role == "image":
        return {"type": "null", "description": "JSON: null; a form: a file part's name"}
    if role == "date":  # ISO 8601; other forms pandas reads are taken too
        return {"type": ["string", "null"], "format": "date"}
    if role == "cont":
        return {"anyOf": [{"type": ["number", "null"]}, _NUMBER_STRING]}
    if role == "multi":  # a list of scalars, a delimited string, or one item
        return {
            "type": ["number", "string", "boolean", "array", "null"],
            "items": _SCALAR,
        }
    return _SCALAR
