"""Dates, multi-valued columns, ids and out-of-range values (#15), on movies."""

import numpy as np
import pandas as pd
import pytest

from tests.conftest import DATA
from widemm import WideDeepRegressor, infer_schema, load
from widemm.columns import time_order
from widemm.preprocessing import TabPreprocessor, WidePreprocessor


@pytest.fixture(scope="module")
def movies() -> pd.DataFrame:
    df = pd.read_parquet(DATA / "movies.parquet").dropna(subset=["Meter"])
    return df.sample(3000, random_state=0)


def test_movies_roles_read_dates_name_lists_and_ids(movies):
    reviews = pd.read_parquet(DATA / "womens_clothing_reviews.parquet").head(2000)
    schema = infer_schema(movies.drop(columns=["Genre", "Meter"]))
    assert schema.date_cols == ("Released",)
    lists = {"Director", "Writer", "Cast", "Production", "Language", "Country"}
    assert lists <= set(schema.multi_cols)
    assert "Title" in schema.text_cols  # commas in a few titles do not make lists
    assert "imdbID" in schema.ignored  # an id by its name, though not unique here
    # Prose with commas stays text.
    assert infer_schema(reviews[["Review Text", "Title"]]).text_cols == (
        "Review Text",
        "Title",
    )


def test_date_strings_and_list_cells_are_recognised():
    days = pd.date_range("2020-01-01", periods=60, freq="37h")
    X = pd.DataFrame({
        "iso": days.strftime("%Y-%m-%d %H:%M"),
        "us": days.strftime("%b %d, %Y"),
        "tags": [["a", "b"][: 1 + i % 2] for i in range(60)],
        "code": [f"A{i % 7}" for i in range(60)],
    })  # fmt: skip
    schema = infer_schema(X)
    assert schema.date_cols == ("iso", "us")
    assert schema.multi_cols == ("tags",)
    assert schema.cat_cols == ("code",)


def test_time_order_reads_a_rising_index_or_date_column():
    days = pd.date_range("2024-01-01", periods=6, freq="D")
    X = pd.DataFrame({"day": days.astype(str), "x": range(6)})
    assert time_order(X, ["day"]) == "column 'day'"
    assert time_order(X.set_axis(days), []) == "the index"
    quarters = pd.period_range("1981Q1", periods=6, freq="Q")
    assert time_order(X.set_axis(quarters), []) == "the index"
    assert time_order(X.set_axis(days[::-1]), ["day"]) is None  # index falls
    assert time_order(X.iloc[[0, 2, 1, 3, 4, 5]], ["day"]) is None
    assert time_order(X.assign(day="2024-01-01"), ["day"]) is None  # one value
    gap = X.assign(day=X["day"].where(X.index != 3))
    assert time_order(gap, ["day"]) is None  # a row without a date
    assert time_order(X, []) is None


def test_date_features_vary_flag_missing_and_name_bad_rows():
    X = pd.DataFrame({
        "when": pd.to_datetime(["2020-01-01", "2020-04-01", None, "2021-07-01"]),
    })  # fmt: skip
    pre = TabPreprocessor().fit(X)
    names = list(pre.get_feature_names_out())
    # Midnight only: no time-of-day pair; the missing date is flagged.
    assert names == [
        *("when.days", "when.year_sin", "when.year_cos"),
        *("when.week_sin", "when.week_cos", "when_missing"),
    ]
    out = pre.transform(X)
    assert out[2, :-1].tolist() == [0.0] * 5
    assert out[:, -1].tolist() == [0, 0, 1, 0]
    assert np.all(np.diff(out[[0, 1, 3], 0]) > 0)  # elapsed time keeps the order
    strings = pd.DataFrame(
        {"when": ["2020-01-01", "2020-02-03", "soon"]}, index=[7, 8, 9]
    )
    with pytest.raises(ValueError, match=r"'when'.*row 9.*'soon'"):
        TabPreprocessor(date_cols=["when"], cont_cols=[]).fit(strings)


def test_multi_valued_codes_pad_and_cap():
    X = pd.DataFrame({"cast": ["Ann, Bob", "Bob", None, "Carl, Ann, Bob, Dee"] * 5})
    pre = TabPreprocessor(multi_cols=["cast"], min_frequency=1, max_categories=3).fit(X)
    assert pre.bag_widths_ == [4]
    assert list(pre.vocab_["cast"]) == ["Bob", "Ann", "Carl"]
    codes = pre.transform(X)[:4]
    # Bob 2, Ann 3, Carl 4; Dee is beyond max_categories (rare, 1); 0 pads.
    assert codes.tolist() == [[3, 2, 0, 0], [2, 0, 0, 0], [0, 0, 0, 0], [4, 3, 2, 1]]
    wide = WidePreprocessor(["cast"], max_categories=2).fit(X)
    assert len(wide.vocab_["cast"]) == 2  # the two most frequent values


def test_values_far_beyond_the_fit_range_are_clipped_one_width_beyond():
    rng = np.random.default_rng(0)
    X = pd.DataFrame({"x": rng.uniform(0, 1, 400)})
    y = np.sin(6 * X["x"]) + rng.normal(0, 0.05, 400)
    model = WideDeepRegressor(max_epochs=5, random_state=0).fit(X, y)
    low, high = X["x"].min(), X["x"].max()
    reach = high + (high - low)  # REACH: one width of the fit range beyond it
    bound, far = model.predict(pd.DataFrame({"x": [reach, 1000.0]}))
    assert far == pytest.approx(bound, abs=1e-5)  # an outlier goes no further


def test_dates_and_lists_train_explain_and_save(movies, tmp_path):
    X = movies[["Released", "Cast", "Country", "Runtime"]]
    model = WideDeepRegressor(max_epochs=3, random_state=0).fit(X, movies["Meter"])
    assert model.pipeline_.schema_.multi_cols == ("Cast", "Country")
    explanation = model.explain(X.iloc[:4])
    assert set(explanation.values.columns) >= {"Released", "Cast", "Country"}
    assert (explanation.values[["Released", "Cast"]].abs().sum() > 0).all()
    model.save(tmp_path / "m")
    again = load(tmp_path / "m")
    np.testing.assert_allclose(again.predict(X), model.predict(X), rtol=1e-6)
    # Lists given as Python lists at predict time read as the strings did.
    as_lists = X.assign(Country=X["Country"].str.split(", "))
    np.testing.assert_allclose(model.predict(as_lists), model.predict(X), rtol=1e-6)
