import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.compose import ColumnTransformer
from sklearn.exceptions import NotFittedError
from sklearn.metrics import r2_score, roc_auc_score
from sklearn.model_selection import GridSearchCV, cross_val_score, train_test_split
from sklearn.pipeline import make_pipeline

from tests.conftest import DATA
from widemm import WideDeepClassifier, WideDeepRegressor
from widemm.datasets import load_adult

FAST = {"max_epochs": 5, "random_state": 0}


@pytest.fixture(scope="module")
def adult_split():
    df = load_adult().sample(4000, random_state=1)
    y = df.pop("income")
    return train_test_split(df, y, test_size=0.25, stratify=y, random_state=0)


@pytest.fixture(scope="module")
def fitted(adult_split):
    X_train, _, y_train, _ = adult_split
    return WideDeepClassifier(**FAST).fit(X_train, y_train)


def test_classifier_learns_adult(adult_split, fitted):
    _, X_test, _, y_test = adult_split
    proba = fitted.predict_proba(X_test)
    assert proba.shape == (len(X_test), 2)
    np.testing.assert_allclose(proba.sum(1), 1.0)
    assert roc_auc_score(y_test == ">50K", proba[:, 1]) > 0.86
    proba = fitted.predict_proba(X_test)
    np.testing.assert_array_equal(
        fitted.predict(X_test), fitted.classes_[proba.argmax(1)]
    )
    assert fitted.classes_.tolist() == ["<=50K", ">50K"]
    assert fitted.score(X_test, y_test) > 0.8
    assert list(fitted.feature_names_in_) == list(X_test.columns)
    assert {"train_loss", "valid_loss", "valid_roc_auc"} <= set(fitted.history_.columns)


def test_ft_transformer_and_crossed_columns(adult_split):
    X_train, X_test, y_train, y_test = adult_split
    model = WideDeepClassifier(
        tab_model="ft_transformer",
        tab_params={"n_blocks": 1, "d_block": 32},
        crossed_cols=[("education", "occupation")],
        **FAST,
    ).fit(X_train, y_train)
    assert (
        model.pipeline_.preprocessors_["wide"].get_feature_names_out()[-1]
        == "education_x_occupation"
    )
    assert roc_auc_score(y_test == ">50K", model.predict_proba(X_test)[:, 1]) > 0.85


def test_same_seed_same_predictions(adult_split, fitted):
    X_train, X_test, y_train, _ = adult_split
    again = clone(fitted).fit(X_train, y_train)
    np.testing.assert_array_equal(
        again.predict_proba(X_test), fitted.predict_proba(X_test)
    )


def test_unseen_categories_and_missing_values_at_predict(adult_split, fitted):
    _, X_test, _, _ = adult_split
    odd = X_test.head(20).copy()
    odd["occupation"] = "Astronaut"
    odd.loc[odd.index[:5], "education"] = None
    odd["age"] = odd["age"].astype(float)
    odd.loc[odd.index[5:10], "age"] = np.nan
    proba = fitted.predict_proba(odd)
    assert np.isfinite(proba).all()
    assert not np.allclose(proba, fitted.predict_proba(X_test.head(20)))


def test_multiclass_and_eval_set(adult_split):
    X_train, X_test = (X.drop(columns="relationship") for X in adult_split[:2])
    y_train, y_test = (X["relationship"] for X in adult_split[:2])
    model = WideDeepClassifier(**FAST).fit(X_train, y_train, eval_set=(X_test, y_test))
    assert len(model.classes_) == 6
    assert model.predict_proba(X_test).shape == (len(X_test), 6)
    assert model.score(X_test, y_test) > 0.6  # majority class is ~0.4
    assert model.history_["valid_accuracy"].iloc[-1] > 0.6


def test_regressor_learns_california_housing():
    df = pd.read_parquet(DATA / "california_housing.parquet").sample(
        3000, random_state=0
    )
    y = df.pop("MedHouseVal")
    X_train, X_test, y_train, y_test = train_test_split(df, y, random_state=0)
    model = WideDeepRegressor(max_epochs=15, random_state=0).fit(X_train, y_train)
    assert model.predict(X_test).shape == (len(X_test),)
    assert r2_score(y_test, model.predict(X_test)) > 0.65  # a linear model gets ~0.6
    assert "wide" not in model.pipeline_.preprocessors_  # no categorical column


@pytest.mark.parametrize(("n_rows", "boost"), [(600, True), (200, False)])
def test_a_target_that_follows_an_input_is_followed_beyond_the_fit_range(n_rows, boost):
    # Trained on x in [0, 1], tested on x in [0.8, 1.3]: predicting the edge of
    # the fit range beyond it (trees alone, clipped inputs) scores R^2 ~ -0.2;
    # on 200 rows (no trees: a line of the continuous inputs) the MLP alone -13.
    rng = np.random.default_rng(0)

    def table(low, high, n):
        x = rng.uniform(low, high, n)
        X = pd.DataFrame(
            {"x": x, "other": rng.normal(size=n), "kind": rng.choice(list("abc"), n)}
        )
        return X, x + rng.normal(0, 0.05, n)

    X, y = table(0.0, 1.0, n_rows)
    X_test, y_test = table(0.8, 1.3, 300)
    model = WideDeepRegressor(max_epochs=8, random_state=0, verbose=0).fit(X, y)
    assert model.pipeline_.preprocessors_["trees"].boost == boost
    assert r2_score(y_test, model.predict(X_test)) >= 0.7


def test_works_with_sklearn_tools(adult_split):
    X_train, _, y_train, _ = adult_split
    X, y = X_train.head(600), y_train.head(600)
    small = WideDeepClassifier(max_epochs=5, random_state=0)
    scores = cross_val_score(small, X, y, cv=2, scoring="roc_auc")
    assert scores.shape == (2,)
    assert (scores > 0.6).all()
    search = GridSearchCV(small, {"tab_params": [{"hidden_dims": (16,)}, None]}, cv=2)
    search.fit(X, y)
    results = search.cv_results_
    assert np.isfinite(results["mean_test_score"]).all()  # both candidates scored
    best = int(np.argmax(results["mean_test_score"]))
    assert search.best_params_ == results["params"][best]
    assert (
        search.best_estimator_.get_params()["tab_params"]
        == (search.best_params_["tab_params"])
    )
    numeric = X.select_dtypes("number").columns
    pipe = make_pipeline(
        ColumnTransformer([("keep", "passthrough", list(numeric))]), clone(small)
    )
    assert pipe.fit(X, y).predict(X).shape == (600,)


def test_numpy_input_gets_column_names():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 3))
    y = (X[:, 0] > 0).astype(int)
    model = WideDeepClassifier(max_epochs=10, batch_size=32, random_state=0).fit(X, y)
    assert model.schema_.cont_cols == ("x0", "x1", "x2")
    assert model.score(X, y) > 0.9
    assert not hasattr(model, "feature_names_in_")


def test_bad_input_errors_name_the_problem(adult_split, fitted):
    X_train, X_test, y_train, _ = adult_split
    with pytest.raises(ValueError, match="age"):
        fitted.predict(X_test.drop(columns="age"))
    with pytest.raises(ValueError, match="shoe_size"):
        fitted.predict(X_test.assign(shoe_size=42))
    bad = X_test.head(3).astype({"age": object})
    bad.loc[bad.index[1], "age"] = "old"
    label = bad.index[1]  # errors name rows by index label, not position
    with pytest.raises(ValueError, match=f"'age' is continuous but row {label} holds"):
        fitted.predict(bad)
    with pytest.raises(ValueError, match="empty"):
        fitted.predict(X_test.head(0))
    y_nan = y_train.map({"<=50K": 0.0, ">50K": 1.0}).copy()
    y_nan.iloc[7] = np.nan
    with pytest.raises(ValueError, match=rf"NaN/inf.*row {y_nan.index[7]} \(nan\)"):
        WideDeepClassifier().fit(X_train, y_nan)
    with pytest.raises(ValueError, match="NaN/inf"):
        WideDeepRegressor().fit(
            X_train, np.where(np.arange(len(X_train)) == 3, np.inf, 1.0)
        )
    with pytest.raises(ValueError, match="one class"):
        WideDeepClassifier().fit(X_train, np.zeros(len(X_train)))
    with pytest.raises(NotFittedError):
        WideDeepClassifier().predict(X_test)
    with pytest.raises(ValueError, match="rows but y has"):
        WideDeepClassifier().fit(X_train, y_train.head(10))
    with pytest.raises(ValueError, match=r"Unknown fusion 'concatt'.*'concat'"):
        WideDeepClassifier(fusion="concatt", max_epochs=1).fit(X_train, y_train)


def test_small_tables_skip_periodic_embeddings_and_learn():
    from sklearn.datasets import load_wine
    from sklearn.model_selection import train_test_split
    from torch import nn

    X, y = load_wine(return_X_y=True, as_frame=True)  # 13 numbers, 133 train rows
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=0.25, random_state=0, stratify=y
    )
    model = WideDeepClassifier(random_state=0).fit(X_train, y_train)
    assert isinstance(model.model_.encoders["tab"].cont_embedding, nn.Identity)
    assert (model.predict(X_test) == y_test).mean() >= 0.93  # 0.87 with them
    big = pd.concat([X_train] * 8, ignore_index=True)  # 1,064 rows: 82 a column
    assert big.shape[0] / big.shape[1] < 100
    many = WideDeepClassifier(
        max_epochs=1, random_state=0, tab_params={"cont_embed_dim": 8}
    )
    many.fit(big, pd.concat([y_train] * 8, ignore_index=True))
    assert not isinstance(many.model_.encoders["tab"].cont_embedding, nn.Identity)
