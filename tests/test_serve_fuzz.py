"""The prediction service fuzzed by Schemathesis from its own OpenAPI document.

Requests are generated from the schema the app publishes (the model's columns,
typed): valid ones (``positive``) must be answered, invalid ones (``negative``)
refused with a 4xx whose ``detail`` says why, and nothing may be a 5xx. The
bounded run is part of the suite; ``-m slow`` runs many more examples.
"""

import pandas as pd
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode

from tests.conftest import DATA
from widemm import WideDeepRegressor
from widemm.serve import create_app


@pytest.fixture(scope="module")
def emoji_schema(emoji_model):
    assert emoji_model.schema_.role("name") == "text"
    app = create_app(emoji_model, max_rows=50, max_explain_rows=3)
    return schemathesis.openapi.from_asgi("/openapi.json", app)


@pytest.fixture(scope="module")
def movies_schema():
    """Categories, numbers, a date, name lists and a title: every other role."""
    df = pd.read_parquet(DATA / "movies.parquet").dropna(subset=["Meter"])
    df = df.sample(300, random_state=0)
    columns = ["Title", "Year", "Rating", "Released", "Runtime", "BoxOffice"]
    columns += ["Director", "Writer", "Cast", "Language", "Country"]
    model = WideDeepRegressor(max_epochs=1, random_state=0)
    model.fit(df[columns], df["Meter"])
    roles = {model.schema_.role(c) for c in columns}
    assert {"cat", "cont", "date", "multi"} <= roles
    app = create_app(model, max_rows=20, max_explain_rows=2)
    return schemathesis.openapi.from_asgi("/openapi.json", app)


@pytest.fixture(scope="module", params=["emoji", "movies"])
def schema(request):
    return request.getfixturevalue(f"{request.param}_schema")


def fuzz(schema, path, mode, examples):
    """Send ``examples`` generated requests to ``path``; check every answer."""
    operation = schema[path]["POST"]
    seen = {"2xx": 0, "4xx": 0}

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=examples,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def run(case):
        response = case.call()
        status = response.status_code
        assert status < 500, (case.body, response.text)
        if mode == GenerationMode.NEGATIVE and case.media_type == "application/json":
            assert status >= 400, (case.body, response.text)
        if status >= 400:
            assert response.json()["detail"].strip(), case.body
        else:
            case.validate_response(response)  # the documented answer
        seen["2xx" if status < 400 else "4xx"] += 1

    run()
    return seen


@pytest.mark.parametrize("path", ["/predict", "/explain"])
def test_generated_requests_get_no_server_error(schema, path):
    examples = 40 if path == "/predict" else 12
    valid = fuzz(schema, path, GenerationMode.POSITIVE, examples)
    assert valid["2xx"] > 0, valid  # valid requests are answered, not all refused
    invalid = fuzz(schema, path, GenerationMode.NEGATIVE, examples)
    assert invalid["4xx"] > 0, invalid


@pytest.mark.slow
@pytest.mark.parametrize("path", ["/predict", "/explain"])
def test_generated_requests_get_no_server_error_long_run(schema, path):
    examples = 1000 if path == "/predict" else 150
    for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
        fuzz(schema, path, mode, examples)
