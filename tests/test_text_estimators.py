import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import train_test_split

import widemm
from tests.conftest import DATA
from widemm import WideDeepClassifier

MINILM = "sentence-transformers/all-MiniLM-L6-v2"
COLS = ["Title", "Review Text", "Age", "Division Name", "Department Name", "Class Name"]


@pytest.fixture(scope="module")
def reviews():
    df = pd.read_parquet(DATA / "womens_clothing_reviews.parquet").sample(
        1600, random_state=0
    )
    y = df.pop("Recommended IND")
    return train_test_split(df[COLS], y, test_size=0.25, stratify=y, random_state=0)


def test_bag_text_model_uses_text_and_tabular(reviews):
    X_train, X_test, y_train, y_test = reviews
    text = WideDeepClassifier(max_epochs=15, random_state=0).fit(X_train, y_train)
    assert set(text.model_.encoders) == {"tab", "text_0", "text_1"}
    auc = roc_auc_score(y_test, text.predict_proba(X_test)[:, 1])
    tab_only = WideDeepClassifier(
        max_epochs=15, random_state=0, ignore_cols=["Title", "Review Text"]
    )
    tab_auc = roc_auc_score(
        y_test, tab_only.fit(X_train, y_train).predict_proba(X_test)[:, 1]
    )
    assert auc > 0.75
    assert (
        auc > tab_auc + 0.1
    )  # the tabular columns alone say little about recommending


@pytest.fixture(scope="module")
def minilm_pair(reviews):
    X_train, _, y_train, _ = reviews
    X, y = X_train.head(96), y_train.head(96)
    params = dict(text_model=MINILM, max_epochs=2, batch_size=32, random_state=0)
    cached = WideDeepClassifier(**params).fit(X, y)
    uncached = WideDeepClassifier(cache_features=False, **params).fit(X, y)
    return cached, uncached


def test_frozen_cache_gives_the_same_predictions(reviews, minilm_pair):
    _, X_test, _, _ = reviews
    cached, uncached = minilm_pair
    rows = X_test.head(40)
    # The cache encodes with bf16 weights where the CPU runs bf16 in hardware
    # (embeddings within cosine 0.9999): two models trained on those and on
    # float32 encodings agree to 2.2e-3 here (1e-5 with both in float32).
    atol = 5e-3 if cached.pipeline_.feature_cache().bf16 else 1e-5
    np.testing.assert_allclose(
        cached.predict_proba(rows), uncached.predict_proba(rows), atol=atol
    )
    assert (
        0 < len(cached.pipeline_.feature_cache().entries["text_1", False]) <= 96 + 40
    )  # each row at most once


def test_rows_and_batches_without_text_train_and_predict(reviews, minilm_pair):
    X_train, X_test, y_train, _ = reviews
    cached, _ = minilm_pair
    empty = X_test.head(8).assign(Title=None, **{"Review Text": np.nan})
    proba = cached.predict_proba(empty)  # a batch in which every text is missing
    assert np.isfinite(proba).all()
    X = X_train.head(64).copy()
    X.loc[X.index[:32], ["Title", "Review Text"]] = (
        None  # whole first batch without text
    )
    model = WideDeepClassifier(
        text_model=MINILM, max_epochs=1, batch_size=32, random_state=0
    )
    model.fit(X, y_train.head(64))
    assert np.isfinite(model.predict_proba(empty)).all()


def test_shared_encoders_have_one_set_of_weights(reviews):
    X_train, _, y_train, _ = reviews
    model = WideDeepClassifier(share_encoders=True, max_epochs=1, random_state=0)
    model.fit(X_train.head(200), y_train.head(200))
    assert model.model_.encoders["text_0"] is model.model_.encoders["text_1"]


def test_text_model_save_load_round_trip(reviews, minilm_pair, tmp_path):
    _, X_test, _, _ = reviews
    cached, _ = minilm_pair
    cached.save(tmp_path)
    loaded = widemm.load(tmp_path)
    rows = X_test.head(16)
    # bf16 encodings round differently in batches of other lengths (a row the
    # original cached from another batch: 7e-5 in probability); float32 to 1e-6.
    atol = 2e-4 if cached.pipeline_.feature_cache().bf16 else 1e-6
    np.testing.assert_allclose(
        loaded.predict_proba(rows), cached.predict_proba(rows), atol=atol
    )


@pytest.mark.parametrize(
    "fusion", ["attention", "cross_attention", "film", "gated", "sum"]
)
def test_every_fusion_trains_through_the_estimator(reviews, fusion):
    X_train, X_test, y_train, y_test = reviews
    model = WideDeepClassifier(fusion=fusion, max_epochs=8, random_state=0)
    model.fit(X_train, y_train)
    name = type(model.model_.fusion).__name__.lower()
    assert name.startswith(fusion.replace("_", ""))
    assert roc_auc_score(y_test, model.predict_proba(X_test)[:, 1]) > 0.7


def test_a_text_column_in_the_wide_part_reads_its_ngrams(reviews, tmp_path):
    X_train, X_test, y_train, _ = reviews
    cats = ["Division Name", "Department Name", "Class Name"]
    model = WideDeepClassifier(
        max_epochs=3, random_state=0, wide_cols=[*cats, "Review Text"]
    ).fit(X_train, y_train)
    pre = model.pipeline_.preprocessors_["wide"]
    assert pre.text_cols == ["Review Text"]
    assert len(pre.ngrams_["Review Text"]) > 1000
    weight = model.model_.wide.linear.weight
    assert weight[pre.padding_idx].abs().sum() == 0  # padding never learns
    assert weight[pre.offsets_[-1] :].abs().sum() > 0  # the n-grams do
    rows = X_test[:5]
    e = model.explain(rows, "permutation", background=X_train[:30])
    assert e.max_error < 1e-4
    assert list(e.wide_values.columns) == [*cats, "Review Text"]
    assert "wide" not in e.values.columns  # all folded into the columns
    model.save(tmp_path / "m")
    expected = model.predict_proba(X_test)
    np.testing.assert_array_equal(
        widemm.load(tmp_path / "m").predict_proba(X_test), expected
    )
    from widemm.onnx_model import load_onnx

    model.export(tmp_path / "onnx")
    exported = load_onnx(tmp_path / "onnx").predict_proba(X_test)
    np.testing.assert_allclose(exported, expected, atol=1e-5)


def test_trees_read_the_text_and_explain_save_and_export_with_it(reviews, tmp_path):
    # With trees, each text column's linear TF-IDF model feeds them; its TreeSHAP
    # share goes to that column, the sum holds, and the saved, the loaded and
    # the torch-free exported model predict alike.
    from widemm.onnx_model import load_onnx

    X_train, X_test, y_train, y_test = reviews
    model = WideDeepClassifier(trees=True, max_epochs=3, random_state=0)
    model.fit(X_train, y_train)
    trees = model.pipeline_.preprocessors_["trees"]
    assert trees.text_cols == ("Title", "Review Text")
    assert roc_auc_score(y_test, model.predict_proba(X_test)[:, 1]) > 0.85
    explanation = model.explain(X_test.head(5))
    assert abs(explanation.max_error) < 0.05
    assert explanation.tree_values["Review Text"].abs().sum() > 0
    model.save(tmp_path / "m")
    loaded = widemm.load(tmp_path / "m")
    expected = model.predict_proba(X_test)
    np.testing.assert_allclose(loaded.predict_proba(X_test), expected, atol=1e-6)
    model.export(tmp_path / "onnx")
    onnx = load_onnx(tmp_path / "onnx").predict_proba(X_test)
    np.testing.assert_allclose(onnx, expected, atol=1e-4)


def test_a_text_only_table_starts_from_its_linear_text_model(reviews, tmp_path):
    # No tabular column: the trees would read one score and only cut it into
    # steps, so the text column's cross-fitted linear scores pass through as
    # they are; explanations, saving and export hold as with trees.
    from widemm.onnx_model import load_onnx
    from widemm.preprocessing.lines import line_scores, vectors

    X_train, X_test, y_train, y_test = (
        part[["Review Text"]] if i < 2 else part for i, part in enumerate(reviews)
    )
    model = WideDeepClassifier(trees=True, max_epochs=2, random_state=0)
    model.fit(X_train, y_train)
    trees = model.pipeline_.preprocessors_["trees"]
    assert trees.boosters_ == [[]]  # no LightGBM model: the scores pass through
    empty = np.zeros((len(X_test), 0))
    A = vectors(X_test["Review Text"], trees.text_vocab_[0], trees.text_idf_[0])
    (line,) = line_scores(trees.lines_[0], [A])
    np.testing.assert_allclose(trees.transform(empty, empty, X_test), line, rtol=1e-5)
    assert roc_auc_score(y_test, line[:, 0]) > 0.85
    explanation = model.explain(X_test.head(5))
    assert abs(explanation.max_error) < 0.05
    assert explanation.tree_values["Review Text"].abs().sum() > 0
    model.save(tmp_path / "m")
    expected = model.predict_proba(X_test)
    loaded = widemm.load(tmp_path / "m").predict_proba(X_test)
    np.testing.assert_allclose(loaded, expected, atol=1e-6)
    model.export(tmp_path / "onnx")
    onnx = load_onnx(tmp_path / "onnx").predict_proba(X_test)
    np.testing.assert_allclose(onnx, expected, atol=1e-4)
