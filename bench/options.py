"""Options of the estimators, each beside the same model without it (for multitask.py).

``class_weight="balanced"`` on Adult with positives cut to a fifth (minority
recall), ``calibrate=True`` on digits trained 60 epochs without early stopping
(expected calibration error, 10 bins), and ``quantiles=(0.05, 0.5, 0.95)`` on
California (held-out coverage of the 90% interval), without and with
``calibrate`` (split-conformal shifts fitted on the validation rows).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from common import DATA, emit, timed
from sklearn.metrics import r2_score, recall_score, roc_auc_score
from sklearn.model_selection import train_test_split

from widemm.datasets import load_adult


def ece(proba: np.ndarray, y: np.ndarray, bins: int = 10) -> float:
    top, hit = proba.max(1), proba.argmax(1) == y
    which = np.clip(np.digitize(top, np.linspace(0, 1, bins + 1)) - 1, 0, bins - 1)
    return float(
        sum(
            abs(hit[which == b].mean() - top[which == b].mean()) * (which == b).mean()
            for b in range(bins)
            if (which == b).any()
        )
    )


def run_extra(name: str) -> None:
    from widemm import WideDeepClassifier, WideDeepRegressor

    if name == "class_weight":
        df = load_adult()
        rare = (df["income"] == ">50K") & (np.arange(len(df)) % 5 != 0)
        df = df[~rare]
        y = df.pop("income")
        X_train, X_test, y_train, y_test = train_test_split(
            df, y, random_state=0, stratify=y
        )
        for option in (None, "balanced"):
            model = WideDeepClassifier(class_weight=option, random_state=0)
            _, seconds = timed(lambda m=model: m.fit(X_train, y_train))
            pred = model.predict(X_test)
            proba = model.predict_proba(X_test)[:, 1]
            emit(
                {
                    "model": f"Adult, 6% positive, class_weight={option}",
                    "minority_recall": round(
                        recall_score(y_test, pred, pos_label=">50K"), 4
                    ),
                    "roc_auc": round(roc_auc_score(y_test == ">50K", proba), 4),
                    "fit_seconds": round(seconds, 1),
                }
            )
    elif name == "calibrate":
        from sklearn.datasets import load_digits

        X, y = load_digits(return_X_y=True, as_frame=True)
        X_train, X_test, y_train, y_test = train_test_split(
            X, y, random_state=0, test_size=0.4
        )
        for option in (False, True):
            model = WideDeepClassifier(
                calibrate=option,
                random_state=0,
                max_epochs=60,
                n_iter_no_change=None,
                validation_fraction=0.25,
            )
            _, seconds = timed(lambda m=model: m.fit(X_train, y_train))
            emit(
                {
                    "model": f"digits, calibrate={option}",
                    "ece": round(
                        ece(model.predict_proba(X_test), y_test.to_numpy()), 4
                    ),
                    "accuracy": round(
                        float((model.predict(X_test) == y_test).mean()), 4
                    ),
                    "fit_seconds": round(seconds, 1),
                }
            )
    else:
        df = pd.read_parquet(DATA / "california_housing.parquet")
        y = df.pop("MedHouseVal")
        X_train, X_test, y_train, y_test = train_test_split(df, y, random_state=0)
        for option in (False, True):
            model = WideDeepRegressor(
                quantiles=(0.05, 0.5, 0.95), calibrate=option, random_state=0
            )
            _, seconds = timed(lambda m=model: m.fit(X_train, y_train))
            q = model.predict_quantiles(X_test)
            inside = (y_test >= q[:, 0]) & (y_test <= q[:, 2])
            emit(
                {
                    "model": f"California, quantiles 0.05-0.95, calibrate={option}",
                    "coverage_90": round(float(inside.mean()), 4),
                    "interval_width": round(float((q[:, 2] - q[:, 0]).mean()), 4),
                    "r2": round(r2_score(y_test, q[:, 1]), 4),
                    "fit_seconds": round(seconds, 1),
                }
            )
