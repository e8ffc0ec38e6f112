import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.pandas import column, data_frames, range_indexes

from widemm import TabPreprocessor, WidePreprocessor

CITY = column("city", elements=st.sampled_from(["a", "b", "c"]) | st.none())
AGE = column("age", elements=st.floats(-1e6, 1e6) | st.just(np.nan))
SIZE = column("size", elements=st.integers(-5, 5))
FLAG = column("flag", elements=st.booleans())
FRAMES = data_frames(
    [CITY, AGE, SIZE, FLAG], index=range_indexes(min_size=1, max_size=30)
)
PAIRS = st.tuples(FRAMES, FRAMES)


@settings(max_examples=40, deadline=None)
@given(frames=PAIRS)
def test_wide_preprocessor_indices_stay_in_range(frames):
    train, test = frames
    pre = WidePreprocessor(
        cols=["city", "size", "flag"], crossed_cols=[("city", "flag")]
    )
    out = pre.fit(train).transform(test)
    assert out.shape == (len(test), 4)
    assert ((out >= 0) & (out < pre.n_indices_)).all()
    blocks = np.append(pre.offsets_, pre.n_indices_)
    assert ((out >= blocks[:-1]) & (out < blocks[1:])).all()  # each input in its block


@settings(max_examples=40, deadline=None)
@given(frames=PAIRS, scaling=st.sampled_from(["standard", "quantile", None]))
def test_tab_preprocessor_codes_and_values_are_valid(frames, scaling):
    train, test = frames
    pre = TabPreprocessor(
        cat_cols=["city", "flag"],
        cont_cols=["age", "size"],
        scaling=scaling,
        min_frequency=2,
    )
    out = pre.fit(train).transform(test)
    assert out.shape == (len(test), pre.n_cat_ + pre.n_cont_)
    codes = out[:, : pre.n_cat_]
    assert (codes >= 0).all()
    assert (codes < np.array(pre.cardinalities_)).all()
    assert np.isfinite(out).all()
    assert len(pre.get_feature_names_out()) == out.shape[1]


def test_wide_preprocessor_reserves_unseen_and_missing(adult_xy):
    X, _ = adult_xy
    pre = WidePreprocessor(cols=["education", "race"]).fit(X)
    odd = X.head(3).copy()
    odd["education"] = ["PhD-from-Mars", None, X["education"].iloc[0]]
    out = pre.transform(odd)
    start = pre.offsets_[0]
    assert out[0, 0] == start  # unseen
    assert out[1, 0] == start + 1  # missing
    assert out[2, 0] >= start + 2  # known
    assert pre.get_feature_names_out().tolist() == ["education", "race"]


def test_wide_preprocessor_crosses_combine_values():
    X = pd.DataFrame({"a": ["x", "x", "y", "y"], "b": ["p", "q", "p", None]})
    pre = WidePreprocessor(cols=[], crossed_cols=[("a", "b")]).fit(X)
    out = pre.transform(X)[:, 0]
    assert len(set(out[:3])) == 3  # three distinct known combinations
    assert out[3] == 1  # a cross with a missing part is missing
    assert pre.get_feature_names_out().tolist() == ["a_x_b"]


def test_tab_preprocessor_rare_unseen_missing_and_indicator(adult_xy):
    X, _ = adult_xy
    pre = TabPreprocessor(min_frequency=20).fit(X)
    edu = list(pre.vocab_).index("native-country")
    assert (
        "Holand-Netherlands" not in pre.vocab_["native-country"]
    )  # rare in 3,000 rows
    test = X.head(4).copy()
    test["native-country"] = ["Atlantis", None, "United-States", "Holand-Netherlands"]
    test["age"] = test["age"].astype(float)
    test.loc[test.index[0], "age"] = np.nan
    out = pre.transform(test)
    assert out[:, edu].tolist() == [1, 0, 2, 1]  # unseen, missing, most frequent, rare
    age = pre.n_cat_ + pre.cont_cols_.index("age")
    assert out[0, age] == 0.0  # missing continuous -> scaled mean, no indicator
    assert pre.nan_cols_ == []  # no missing in fit -> no indicator column


def test_tab_preprocessor_adds_missing_indicator_for_columns_missing_in_fit():
    X = pd.DataFrame({"x": [1.0, np.nan, 3.0, 4.0], "c": list("abab")})
    pre = TabPreprocessor(min_frequency=1).set_output(transform="pandas").fit(X)
    out = pre.transform(X)
    assert list(out.columns) == ["c", "x", "x_missing"]
    assert out["x_missing"].tolist() == [0, 1, 0, 0]
    assert out["x"].iloc[1] == 0.0


def test_tab_preprocessor_rejects_garbage_with_row_and_column(adult_xy):
    X, _ = adult_xy
    pre = TabPreprocessor().fit(X)
    bad = X.head(5).copy().astype({"age": object})
    bad.loc[bad.index[3], "age"] = "forty"
    label = bad.index[3]  # errors name rows by index label, not position
    with pytest.raises(ValueError, match=f"continuous but row {label} holds 'forty'"):
        pre.transform(bad)
    bad["age"] = [1.0, np.inf, 2.0, 3.0, 4.0]
    with pytest.raises(ValueError, match=f"'age' holds inf at row {bad.index[1]}"):
        pre.transform(bad)


def test_preprocessors_name_missing_columns(adult_xy):
    X, _ = adult_xy
    pre = WidePreprocessor(cols=["education"]).fit(X)
    with pytest.raises(ValueError, match="education"):
        pre.transform(X.drop(columns="education"))
    shuffled = X[X.columns[::-1]]  # column order does not matter
    np.testing.assert_array_equal(pre.transform(shuffled), pre.transform(X))


def test_quantile_scaling_is_deterministic_beyond_subsample(adult):
    X = pd.concat([adult] * 4)  # > QuantileTransformer's default subsample of 10,000
    a = TabPreprocessor(scaling="quantile").fit_transform(X)
    b = TabPreprocessor(scaling="quantile").fit_transform(X)
    np.testing.assert_array_equal(a, b)


def test_wide_text_columns_give_their_ngrams():
    X = pd.DataFrame(
        {
            "kind": ["a", "b", "a", None],
            "note": ["good fit", "bad fit", "good good fit", None],
        }
    )
    pre = WidePreprocessor(cols=["kind"], text_cols=["note"]).fit(X)
    # seen in 2+ rows: "fit" (3 rows), "good" (2), "good fit" (2); most frequent first
    assert list(pre.ngrams_["note"]) == ["fit", "good", "good fit"]
    assert pre.inputs_ == ["kind", *["note"] * pre.widths_["note"]]
    codes = pre.transform(X)
    start, pad = pre.offsets_[1], pre.padding_idx
    assert pad == pre.n_indices_ - 1
    np.testing.assert_array_equal(codes[1, 1:], [start, *[pad] * (codes.shape[1] - 2)])
    assert set(codes[0, 1:]) == {start, start + 1, start + 2}  # fit, good, good fit
    assert codes[0, 1] == start + 2  # the rarest first: "good fit"
    assert (codes[3, 1:] == pad).all()  # missing text: nothing but padding
    unseen = pre.transform(pd.DataFrame({"kind": ["a"], "note": ["excellent"]}))
    assert (unseen[0, 1:] == pad).all()
    wide = WidePreprocessor(cols=[], text_cols=["note"], max_ngrams=1).fit(X)
    assert list(wide.ngrams_["note"]) == ["fit"]  # the most frequent kept


def test_wide_text_rows_longer_than_the_width_keep_their_rarest_ngrams():
    X = pd.DataFrame({"note": ["red hat"] * 198 + ["red hat blue coat"] * 2})
    pre = WidePreprocessor(cols=[], text_cols=["note"]).fit(X)
    # 99% of rows hold 3 n-grams (red, hat, red hat); the long rows hold 7
    assert pre.widths_["note"] == 3
    codes = pre.transform(X)
    ids = {g: pre.offsets_[0] + i for i, g in enumerate(pre.ngrams_["note"])}
    assert set(codes[0]) == {ids["red"], ids["hat"], ids["red hat"]}
    rarest = sorted(ids.values())[-3:][::-1]
    np.testing.assert_array_equal(codes[-1], rarest)  # rarest first
    assert not {ids["red"], ids["hat"]} & set(codes[-1])
