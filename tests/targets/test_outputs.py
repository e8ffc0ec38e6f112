"""Outputs: one decoding of logits for predict, files, JSON and scores."""

import json

import numpy as np
import pandas as pd
import pytest
from sklearn import metrics

from tests.conftest import DATA
from widemm.targets import Labels, LabelSets, Outputs, Values, split_labels


@pytest.fixture(scope="module")
def movies():
    movies = pd.read_parquet(DATA / "movies.parquet")
    return movies.dropna(subset=["Genre", "Runtime", "Year"]).head(400)


def logits_for(outputs, n, seed=0):
    width = sum(t.n_outputs for t in outputs.targets)
    return np.random.default_rng(seed).normal(size=(n, width)).astype(np.float32)


def test_one_label_target_decodes_and_scores_as_sklearn(adult):
    y = adult["income"].to_numpy()
    outputs = Outputs([Labels().fit(y)])
    z = logits_for(outputs, len(y))
    proba = outputs.proba(z)
    assert proba.shape == (len(y), 2)
    np.testing.assert_array_equal(
        outputs.predict(z), outputs.targets[0].classes_[proba.argmax(1)]
    )
    codes = outputs.targets[0].encode(y)
    scores = outputs.scores(z, codes)
    truth = y == ">50K"
    assert scores["roc_auc"] == pytest.approx(metrics.roc_auc_score(truth, proba[:, 1]))
    assert scores["log_loss"] == pytest.approx(metrics.log_loss(truth, proba[:, 1]))
    assert scores["accuracy"] == pytest.approx((outputs.predict(z) == y).mean())
    table = outputs.table(z, adult.index)
    assert list(table.columns) == ["prediction", "proba_<=50K", "proba_>50K"]
    assert (table.index == adult.index).all()
    records = outputs.records(z, adult.index)
    assert records["prediction"] == table["prediction"].tolist()
    assert json.dumps(records)  # JSON-ready: no numpy scalars
    assert outputs.describe() == {
        "tasks": [{"name": "y", "kind": "binary", "classes": ["<=50K", ">50K"]}],
        "task": "classification",
        "classes": ["<=50K", ">50K"],
    }


def test_label_sets_threshold_once_for_predict_files_and_json(movies):
    genres = movies["Genre"]
    outputs = Outputs([LabelSets().fit(genres)])
    z = logits_for(outputs, len(genres))
    labels = outputs.targets[0].labels_
    chosen = outputs.proba(z) > 0.5
    records = outputs.records(z)
    assert records["prediction"] == [list(labels[row]) for row in chosen]
    joined = outputs.predict(z)  # the fit form: delimited strings
    assert [set(s.split(", ")) - {""} for s in joined] == [
        set(r) for r in records["prediction"]
    ]
    indicator = split_labels(genres)
    scores = outputs.scores(z, outputs.targets[0].encode(genres))
    assert scores["roc_auc_micro"] == pytest.approx(
        metrics.roc_auc_score(indicator.to_numpy().ravel(), outputs.proba(z).ravel())
    )
    assert scores["subset_accuracy"] == pytest.approx(
        (chosen == indicator.to_numpy().astype(bool)).all(1).mean()
    )


def test_several_regression_columns_are_named_and_scored_in_their_units(movies):
    Y = movies[["Runtime", "Year"]].astype(float)
    target = Values(quantiles=(0.1, 0.5, 0.9)).fit(Y)
    outputs = Outputs([target], columns=["Runtime", "Year"])
    z = logits_for(outputs, len(Y))
    predicted = outputs.predict(z)
    assert predicted.shape == (len(Y), 2)
    assert outputs.quantiles(z).shape == (len(Y), 2, 3)
    scores = outputs.scores(z, target.encode(Y))
    assert scores["Year_r2"] == pytest.approx(
        metrics.r2_score(Y["Year"], predicted[:, 1])
    )
    assert scores["Runtime_mae"] == pytest.approx(
        metrics.mean_absolute_error(Y["Runtime"], predicted[:, 0])
    )
    assert list(outputs.table(z).columns) == ["prediction_Runtime", "prediction_Year"]
    block = outputs.block("Year")  # what explaining Year reads: its median
    assert (block.start, block.width) == (4, 1)
    with pytest.raises(ValueError, match="not one of this model's targets"):
        outputs.block("Rating")


def test_several_tasks_decode_to_frames_and_prefix_their_scores(movies):
    targets = [
        LabelSets("Genre", allow_missing=True).fit(movies["Genre"]),
        Values("Meter", allow_missing=True).fit(movies["Meter"]),
    ]
    outputs = Outputs(targets)
    z = logits_for(outputs, len(movies))
    predicted = outputs.predict(z, movies.index)
    assert list(predicted.columns) == ["Genre", "Meter"]
    assert set(outputs.proba(z, movies.index)) == {"Genre"}
    codes = np.concatenate([t.encode(movies[t.name]) for t in targets], axis=1)
    scores = outputs.scores(z, codes)
    known = movies["Meter"].notna()
    assert scores["Meter_r2"] == pytest.approx(
        metrics.r2_score(movies["Meter"][known], predicted["Meter"][known])
    )
    assert "Genre_roc_auc_macro" in scores
    table = outputs.table(z, movies.index)
    assert "proba_Genre_Drama" in table
    assert outputs.block("Meter").start == targets[0].n_outputs
    assert outputs.describe()["task"] == "multitask"
    assert json.dumps(outputs.records(z, movies.index))


def test_numeric_classes_with_missing_values_fit_a_task_of_several():
    # 0/1 codes with a gap come as floats, which were read as objects: scikit-learn
    # refused them as labels of an "unknown" type
    y = pd.Series([0, 1, np.nan, 1, 0, np.nan, 1], dtype=float)
    labels = Labels("high", allow_missing=True).fit(y)
    assert labels.kind == "binary"
    assert labels.classes_.tolist() == [0.0, 1.0]
    assert labels.known_ == pytest.approx(5 / 7)
    with pytest.raises(ValueError, match="one class only"):
        Labels("high", allow_missing=True).fit(pd.Series([1.0, np.nan, 1.0]))
