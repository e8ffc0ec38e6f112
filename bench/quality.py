"""widemm's defaults beside HistGradientBoosting on the same splits (issue #15's suite).

    python bench/quality.py            # every data set, each in a fresh process
    python bench/quality.py --run wine

Defaults on both sides, no tuning (HGB reads string columns as categoricals).
Adult (ROC AUC) and California (R²) on the fixed 80/20 splits; scikit-learn's
bundled wine, breast cancer (ROC AUC), diabetes (R²) and digits (accuracy) with
5-fold cross-validation (seed 0), mean over folds. Reported: each model's metric
and fit seconds, and widemm's metric over HGB's (``ratio``; for R² the ratio of
the two R²s).
"""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
from common import cli, emit, split
from sklearn import datasets
from sklearn.ensemble import HistGradientBoostingClassifier as HGBC
from sklearn.ensemble import HistGradientBoostingRegressor as HGBR
from sklearn.metrics import accuracy_score, r2_score, roc_auc_score
from sklearn.model_selection import KFold, StratifiedKFold

from widemm import WideDeepClassifier, WideDeepRegressor

SETS = ["adult", "california", "wine", "breast_cancer", "diabetes", "digits"]
BUNDLED = {
    "wine": (datasets.load_wine, "accuracy"),
    "breast_cancer": (datasets.load_breast_cancer, "roc_auc"),
    "diabetes": (datasets.load_diabetes, "r2"),
    "digits": (datasets.load_digits, "accuracy"),
}


def score(metric: str, model: object, X: pd.DataFrame, y: pd.Series) -> float:
    if metric == "r2":
        return float(r2_score(y, model.predict(X)))  # type: ignore[attr-defined]
    if metric == "roc_auc":
        proba = model.predict_proba(X)  # type: ignore[attr-defined]
        return float(roc_auc_score(y == model.classes_[1], proba[:, 1]))  # type: ignore[attr-defined]
    return float(accuracy_score(y, model.predict(X)))  # type: ignore[attr-defined]


def folds(name: str) -> tuple[str, list[tuple[pd.DataFrame, ...]]]:
    """The metric and the (X_train, X_test, y_train, y_test) splits of a data set."""
    if name == "adult":
        return "roc_auc", [tuple(split("adult", "income"))]
    if name == "california":
        return "r2", [tuple(split("california_housing", "MedHouseVal", stratify=False))]
    load, metric = BUNDLED[name]
    X, y = load(return_X_y=True, as_frame=True)
    cv = KFold(5, shuffle=True, random_state=0) if metric == "r2" else (
        StratifiedKFold(5, shuffle=True, random_state=0)
    )  # fmt: skip
    return metric, [
        (X.iloc[a], X.iloc[b], y.iloc[a], y.iloc[b]) for a, b in cv.split(X, y)
    ]


def categorical(train: pd.DataFrame, test: pd.DataFrame) -> tuple[pd.DataFrame, ...]:
    """String columns as categoricals with the training rows' categories."""
    train, test = train.copy(), test.copy()
    for col in train.columns:
        if not pd.api.types.is_numeric_dtype(train[col]):
            kinds = pd.CategoricalDtype(train[col].dropna().unique())
            train[col], test[col] = train[col].astype(kinds), test[col].astype(kinds)
    return train, test


def run(name: str) -> None:
    metric, splits = folds(name)
    regression = metric == "r2"
    makers = {
        "widemm": lambda: (WideDeepRegressor if regression else WideDeepClassifier)(
            random_state=0
        ),
        "HGB": lambda: (HGBR if regression else HGBC)(
            categorical_features="from_dtype", random_state=0
        ),
    }
    results = {}
    for label, make in makers.items():
        values, seconds = [], 0.0
        for X_train, X_test, y_train, y_test in splits:
            if label == "HGB":  # strings as pandas categoricals, as HGB reads them
                X_train, X_test = categorical(X_train, X_test)
            model = make()
            start = time.perf_counter()
            model.fit(X_train, y_train)
            seconds += time.perf_counter() - start
            values.append(score(metric, model, X_test, y_test))
        results[label] = (float(np.mean(values)), seconds)
    ours, theirs = results["widemm"][0], results["HGB"][0]
    emit({
        "model": f"{name} ({metric}, {len(splits)} split{'s' * (len(splits) > 1)})",
        "widemm": round(ours, 4), "HGB": round(theirs, 4),
        "ratio": round(ours / theirs, 4),
        "widemm_fit_seconds": round(results["widemm"][1], 1),
        "hgb_fit_seconds": round(results["HGB"][1], 1),
    })  # fmt: skip


if __name__ == "__main__":
    cli(__file__, __doc__, SETS, run, "quality")
