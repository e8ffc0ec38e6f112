"""Explanations: rows explained per second, and agreement with references.

    python bench/explain.py              # both data sets, JSON lines
    python bench/explain.py --run NAME   # one data set in this process

Per data set, one trained widemm model is explained on 100 test rows against 20
training rows (the background) with each method; on the same model, game and
background, the `shap` package's KernelExplainer explains 20 of those rows, and
the rank correlation (Spearman) of the columns' global importance is reported.
On Adult, the global importance is also compared with scikit-learn's permutation
importance of a HistGradientBoosting model (a different model: a sanity check
that the ranking matches domain knowledge). On the reviews, token attributions of
10 rows are timed (frozen all-MiniLM-L6-v2, run with gradients through it).

``emoji_224``: memory. 600 emoji rows (image path, name, numbers), 480 to train
with defaults (the small CNN at 224 px, learned; 3 epochs: explaining costs the
same after any number), then 12 rows explained against 10 background rows at 16
steps by each method, one row's image regions, and the report with those rows.
Each row reports seconds per explained row and the process's peak RSS so far.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch
from common import cli, emit, split, timed
from scipy.stats import spearmanr

N_EXPLAIN, N_BACKGROUND, N_SHAP = 100, 20, 20
MINILM = "sentence-transformers/all-MiniLM-L6-v2"
REVIEW_COLUMNS = [
    "Title",
    "Review Text",
    "Age",
    "Division Name",
    "Department Name",
    "Class Name",
    "Positive Feedback Count",
]


def rank_agreement(a: pd.DataFrame, b: pd.DataFrame) -> float:
    """Spearman correlation of two importance tables over their common columns."""
    a, b = a.set_index("column")["importance"], b.set_index("column")["importance"]
    common = a.index.intersection(b.index)
    return float(spearmanr(a[common], b[common]).statistic)


def shap_kernel(model, explanation, background: pd.DataFrame) -> tuple:
    """KernelExplainer on the same coalition game; (importance, seconds)."""
    import shap

    from widemm.explain.attribution import coalition_game
    from widemm.explain.players import Players

    x = explanation._inputs
    bg = model.pipeline_.inputs(background, model.model_)
    players = Players.of(model.pipeline_, list(explanation.data.columns), x)
    game = coalition_game(model.model_.eval(), players, x, bg)
    values = []

    def run() -> None:
        for i in range(N_SHAP):

            def f(z: np.ndarray, i: int = i) -> np.ndarray:
                rows = torch.full((len(z),), i)
                return game(torch.from_numpy(z).float(), rows)[:, 0].double().numpy()

            n = len(players.names)
            explainer = shap.KernelExplainer(f, np.zeros((1, n)))
            values.append(explainer.shap_values(np.ones((1, n)), silent=True)[0])

    _, seconds = timed(run)
    mean_abs = np.abs(np.array(values)).mean(0)
    table = pd.DataFrame({"column": players.names, "importance": mean_abs})
    return table.sort_values("importance", ascending=False), seconds


def explain_rows(data: str, model, X_test, X_train) -> dict:
    """Time both methods and compare them with each other and with shap."""
    X, background = X_test[:N_EXPLAIN], X_train.sample(N_BACKGROUND, random_state=0)
    rows = {}
    for method in ("gradient", "permutation"):
        e, seconds = timed(lambda m=method: model.explain(X, m, background))
        rows[method] = e
        emit(
            {
                "bench": "explain",
                "model": f"{data}: widemm {method}",
                "rows_explained": len(X),
                "explain_seconds": seconds,
                "rows_per_s": len(X) / seconds,
                "max_sum_error": e.max_error,
                "top_columns": ", ".join(e.importance()["column"][:4]),
            }
        )
    grad, perm = (rows[m].importance() for m in ("gradient", "permutation"))
    first = rows["permutation"].values.iloc[:N_SHAP]
    perm_first = first.abs().mean().rename_axis("column").reset_index(name="importance")
    reference, seconds = shap_kernel(model, rows["permutation"], background)
    emit(
        {
            "bench": "explain",
            "model": f"{data}: shap KernelExplainer",
            "rows_explained": N_SHAP,
            "explain_seconds": seconds,
            "rows_per_s": N_SHAP / seconds,
            "top_columns": ", ".join(reference["column"][:4]),
            "spearman_vs_widemm_permutation": rank_agreement(reference, perm_first),
            "spearman_vs_widemm_gradient": rank_agreement(reference, grad),
            "spearman_gradient_vs_permutation": rank_agreement(grad, perm),
        }
    )
    return rows


def adult() -> None:
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.inspection import permutation_importance

    from widemm import WideDeepClassifier

    X_train, X_test, y_train, y_test = split("adult", "income")
    model = WideDeepClassifier(random_state=0).fit(X_train, y_train)
    rows = explain_rows("adult", model, X_test, X_train)
    cats = list(X_train.select_dtypes(exclude="number").columns)
    as_category = {c: "category" for c in cats}
    hgb = HistGradientBoostingClassifier(categorical_features="from_dtype")
    hgb.fit(X_train.astype(as_category), y_train)
    sample = X_test[:2000].astype(as_category)
    result, seconds = timed(
        lambda: permutation_importance(
            hgb, sample, y_test[:2000], scoring="roc_auc", n_repeats=5, random_state=0
        )
    )
    table = pd.DataFrame(
        {"column": X_train.columns, "importance": result.importances_mean}
    )
    table = table.sort_values("importance", ascending=False)
    emit(
        {
            "bench": "explain",
            "model": "adult: HistGradientBoosting permutation importance",
            "rows_explained": len(sample),
            "explain_seconds": seconds,
            "top_columns": ", ".join(table["column"][:4]),
            "spearman_vs_widemm_gradient": rank_agreement(
                table, rows["gradient"].importance()
            ),
            "spearman_vs_widemm_permutation": rank_agreement(
                table, rows["permutation"].importance()
            ),
        }
    )


def reviews() -> None:
    from widemm import WideDeepClassifier

    X_train, X_test, y_train, _ = split("womens_clothing_reviews", "Recommended IND")
    X_train, X_test = X_train[REVIEW_COLUMNS][:2000], X_test[REVIEW_COLUMNS]
    model = WideDeepClassifier(text_model=MINILM, random_state=0)
    model.fit(X_train, y_train[:2000])
    rows = explain_rows("reviews", model, X_test, X_train)
    texts = X_test[:N_EXPLAIN]["Review Text"].dropna().index[:10]
    e = rows["gradient"]
    tokens, seconds = timed(lambda: [e.tokens(r, "Review Text") for r in texts])
    emit(
        {
            "bench": "explain",
            "model": "reviews: widemm gradient, tokens of Review Text",
            "rows_explained": len(texts),
            "explain_seconds": seconds,
            "rows_per_s": len(texts) / seconds,
            "tokens_per_row": float(np.mean([len(t) for t in tokens])),
        }
    )


def emoji_224() -> None:
    import tempfile

    from common import DATA, peak_rss_mb

    from widemm import WideDeepClassifier

    root = DATA / "emoji"
    df = pd.read_parquet(root / "emoji.parquet").drop(columns="sort_order")
    df = df.sample(600, random_state=0)
    y = df.pop("category")
    X = df[["image_path", "name", "added_in", "n_skin_variations"]]
    model = WideDeepClassifier(image_root=str(root), max_epochs=3, random_state=0)
    _, fit_seconds = timed(lambda: model.fit(X[:480], y[:480]))
    emit(
        {
            "model": "emoji, small CNN at 224 px: fit (480 rows, 3 epochs)",
            "fit_seconds": round(fit_seconds, 1),
            "peak_rss_mb": round(peak_rss_mb()),
        }
    )
    rows, background = X[480:492], X[:10]

    def row(what: str, seconds: float, n: int) -> None:
        emit(
            {
                "model": f"emoji, small CNN at 224 px: {what}",
                "rows_explained": n,
                "seconds_per_explain": round(seconds / n, 4),
                "peak_rss_mb": round(peak_rss_mb()),
            }
        )

    _, seconds = timed(lambda: model.predict_proba(X[480:]))
    row("predict", seconds, 120)
    for method in ("gradient", "permutation"):
        _, seconds = timed(
            lambda m=method: model.explain(
                rows, background=background, method=m, n_steps=16
            )
        )
        row(f"explain, {method}", seconds, len(rows))
    explanation = model.explain(rows, background=background, n_steps=16)
    _, seconds = timed(lambda: explanation.regions(rows.index[0], "image_path", grid=4))
    row("image regions of one row", seconds, 1)
    with tempfile.TemporaryDirectory() as folder:
        _, seconds = timed(lambda: model.report(folder, data=(rows, y[480:492])))
    row("report with 12 held-out rows", seconds, len(rows))


def run(name: str) -> None:
    {"adult": adult, "reviews": reviews, "emoji_224": emoji_224}[name]()


if __name__ == "__main__":
    cli(__file__, __doc__, ["adult", "reviews", "emoji_224"], run, "explain")
