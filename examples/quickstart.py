"""Quickstart: wide & deep on the Adult census data, end to end.

Fit, score on a held-out split, save, reload in a clean object, predict, and show
which columns matter most (permutation importance on the test split).
"""

import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.inspection import permutation_importance
from sklearn.metrics import accuracy_score, roc_auc_score
from sklearn.model_selection import train_test_split

import widemm

DATA = Path(__file__).resolve().parents[1] / "data" / "adult.parquet"


def main() -> None:
    df = pd.read_parquet(DATA)
    y = df.pop("income")
    X_train, X_test, y_train, y_test = train_test_split(
        df, y, test_size=0.2, stratify=y, random_state=0
    )

    model = widemm.WideDeepClassifier(random_state=0, verbose=1)
    print("Column roles inferred from the DataFrame:")
    print(widemm.infer_schema(X_train), "\n")

    start = time.perf_counter()
    model.fit(X_train, y_train)
    fit_seconds = time.perf_counter() - start
    proba = model.predict_proba(X_test)[:, 1]
    print(f"fit: {fit_seconds:.1f} s, {len(model.history_)} epochs (early stopping)")
    print(f"test ROC AUC  {roc_auc_score(y_test, proba):.4f}")
    print(f"test accuracy {accuracy_score(y_test, model.predict(X_test)):.4f}\n")

    with tempfile.TemporaryDirectory() as folder:
        model.save(folder)
        files = ", ".join(sorted(p.name for p in Path(folder).iterdir()))
        restored = widemm.load(folder)
        same = np.array_equal(
            restored.predict_proba(X_test), model.predict_proba(X_test)
        )
        print(f"saved to {files}; reloaded model predicts identically: {same}")

    print("\nFirst test rows:")
    preview = X_test.head(5)[["age", "education", "marital-status", "occupation"]]
    print(
        preview.assign(
            predicted=restored.predict(X_test.head(5)), actual=y_test.head(5)
        )
    )

    sample = X_test.sample(2000, random_state=0)
    result = permutation_importance(
        restored,
        sample,
        y_test.loc[sample.index],
        scoring="roc_auc",
        n_repeats=3,
        random_state=0,
    )
    importance = pd.Series(result.importances_mean, index=sample.columns)
    print("\nTop columns by permutation importance (drop in test ROC AUC):")
    print(importance.sort_values(ascending=False).head(8).round(4).to_string())


if __name__ == "__main__":
    main()
