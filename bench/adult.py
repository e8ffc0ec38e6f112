"""Adult income: widemm's WideDeepClassifier beside scikit-learn's HistGradientBoosting.

python bench/adult.py              # every candidate, one JSON line each
python bench/adult.py --run NAME   # one candidate in this process
"""

from __future__ import annotations

from common import cli, emit, latency_ms, split, timed
from sklearn.metrics import accuracy_score, roc_auc_score

CANDIDATES = [
    "widemm_default",
    "widemm_ft_transformer",
    "sklearn_hist_gradient_boosting",
]


def make(name: str):
    if name == "sklearn_hist_gradient_boosting":
        from sklearn.ensemble import HistGradientBoostingClassifier

        return HistGradientBoostingClassifier(
            categorical_features="from_dtype", random_state=0
        )
    from widemm import WideDeepClassifier

    if name == "widemm_ft_transformer":
        return WideDeepClassifier(tab_model="ft_transformer", random_state=0)
    return WideDeepClassifier(random_state=0)


def run(name: str) -> None:
    X_train, X_test, y_train, y_test = split("adult", "income")
    if name.startswith(
        "sklearn"
    ):  # HistGradientBoosting reads categories from the dtype
        cats = X_train.select_dtypes("object").columns.union(
            X_train.select_dtypes("string").columns
        )
        X_train, X_test = (
            X.astype({c: "category" for c in cats}) for X in (X_train, X_test)
        )
    model = make(name)
    _, fit_s = timed(lambda: model.fit(X_train, y_train))
    proba, predict_s = timed(lambda: model.predict_proba(X_test)[:, 1])
    emit(
        {
            "bench": "adult",
            "model": name,
            "roc_auc": roc_auc_score(y_test == ">50K", proba),
            "accuracy": accuracy_score(y_test == ">50K", proba > 0.5),
            "fit_seconds": fit_s,
            "epochs": len(getattr(model, "history_", [])) or None,
            "predict_rows_per_s": len(X_test) / predict_s,
            **latency_ms(model.predict_proba, X_test),
        }
    )


if __name__ == "__main__":
    cli(__file__, __doc__, CANDIDATES, run, "adult")
