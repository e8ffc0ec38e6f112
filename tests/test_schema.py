import numpy as np
import pandas as pd
import pytest

from tests.conftest import DATA
from widemm import infer_schema


def test_infer_schema_adult_roles(adult_xy):
    X, _ = adult_xy
    schema = infer_schema(X)
    assert set(schema.cat_cols) == {
        "workclass",
        "education",
        "marital-status",
        "occupation",
        "relationship",
        "race",
        "gender",
        "native-country",
    }
    assert set(schema.cont_cols) == {
        "age",
        "fnlwgt",
        "educational-num",
        "capital-gain",
        "capital-loss",
        "hours-per-week",
    }
    assert schema.wide_cols == schema.cat_cols
    assert not schema.text_cols
    assert not schema.ignored


def test_infer_schema_reviews_finds_text_and_ids():
    X = pd.read_parquet(DATA / "womens_clothing_reviews.parquet").head(2000)
    schema = infer_schema(X.drop(columns=["Recommended IND"]))
    assert schema.text_cols == ("Title", "Review Text")
    assert "Clothing ID" in schema.ignored
    assert set(schema.cat_cols) == {"Division Name", "Department Name", "Class Name"}
    assert "Age" in schema.cont_cols
    assert schema.wide_cols == (*schema.cat_cols, "Review Text")  # its n-grams too


def test_infer_schema_ignores_constants_ids_and_detects_images():
    n = 50
    X = pd.DataFrame(
        {
            "user_id": np.arange(n),
            "const": np.ones(n),
            "empty": [None] * n,
            "token": [f"u{i:04d}" for i in range(n)],
            "photo": [f"img/{i}.png" for i in range(n)],
            "flag": np.arange(n) % 2 == 0,
            "value": np.linspace(0, 1, n),
        }
    )
    schema = infer_schema(X)
    assert set(schema.ignored) == {"user_id", "const", "empty", "token"}
    assert schema.image_cols == ("photo",)
    assert schema.cat_cols == ("flag",)
    assert schema.cont_cols == ("value",)
    table = str(schema)  # the readable summary shows every column and why
    assert all(col in table for col in X.columns)
    assert "looks like an id" in table


def test_infer_schema_user_overrides_win(adult_xy):
    X, _ = adult_xy
    schema = infer_schema(
        X,
        cat_cols=["educational-num"],
        ignore_cols=["fnlwgt"],
        wide_cols=["education"],
        crossed_cols=[("education", "occupation")],
    )
    assert "educational-num" in schema.cat_cols
    assert "fnlwgt" in schema.ignored
    assert "fnlwgt" not in schema.cont_cols
    assert schema.wide_cols == ("education",)
    assert schema.crossed_cols == (("education", "occupation"),)


def test_infer_schema_bad_names_suggest_the_closest(adult_xy):
    X, _ = adult_xy
    with pytest.raises(ValueError, match="Did you mean 'education'"):
        infer_schema(X, cat_cols=["educaton"])
    with pytest.raises(ValueError, match="two roles"):
        infer_schema(X, cat_cols=["age"], cont_cols=["age"])
    with pytest.raises(TypeError, match="list of column names"):
        infer_schema(X, cat_cols="age")


def test_schema_round_trips_through_dict(adult_xy):
    X, _ = adult_xy
    schema = infer_schema(X, crossed_cols=[("education", "occupation")])
    assert type(schema).from_dict(schema.to_dict()) == schema


def test_inverted_titles_and_names_are_not_lists_and_a_constant_flag_is_ignored():
    rng = np.random.default_rng(0)
    words = ["Woman", "Joe", "Night", "River", "Heat", "Sleep", "Man", "City"]
    titles = [
        " ".join(rng.choice(words, 3)) + f" {i}" + (", The" if i % 4 == 0 else "")
        for i in range(400)
    ]
    people = [
        f"{w}{i}, {rng.choice(list('ABCDEFGHJK'))}"
        for i, w in enumerate(rng.choice(words, 400))
    ]
    cast = [", ".join(rng.choice(["Ann", "Bob", "Carl", "Dee"], 2)) for _ in range(400)]
    X = pd.DataFrame(
        {"title": titles, "player": people, "cast": cast, "flag": [False] * 400}
    )
    schema = infer_schema(X)
    assert schema.role("title") == "text"
    assert schema.role("player") == "text"
    assert schema.role("cast") == "multi"  # a real list stays one
    assert schema.ignored["flag"] == "a single value"
    assert schema.notes["cast"] == "lists of short items separated by ','"
