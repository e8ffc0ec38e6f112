"""Linear models whose scores the trees read, or which stand in for them.

A text column's TF-IDF (words and word pairs seen in 2+ rows, the
``MAX_FEATURES`` most frequent, sublinear counts, rows of unit length) feeds a
regularised linear model per target column, cross-fitted like the trees: every
training row's score comes from the model that did not see it. The trees take
the scores as inputs beside the tabular columns (stacking), so a table with text
starts where the best linear text model ends (TF-IDF + logistic regression, the
text tables' usual reference) and the trees add the tabular columns to it.
Without trees (small tables), the same cross-fitting gives a line of the
continuous inputs whose scores the model starts from. ``fit_slopes``: the
regression line the trees' scores follow beyond the fit range.

Only numpy, scipy and scikit-learn: the torch-free ONNX runtime scores too.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

MAX_FEATURES = 20_000
# Inverse regularisation strengths, each cross-fitted; the best out of fold is
# kept (see _loss): the clothing reviews' texts pick 4.
CS = (0.25, 1.0, 4.0, 16.0)
# The strengths of a line over the continuous inputs (standard-scaled): wider,
# as spectra (meats' absorbances) want almost none (ridge alpha 1e-4).
DENSE_CS = tuple(10.0**k for k in range(-3, 5))


def fit_vocabulary(strings: pd.Series) -> tuple[dict[str, int], np.ndarray]:
    """Return the TF-IDF vocabulary (term -> column) and idf of a text column."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    vectorizer = TfidfVectorizer(
        ngram_range=(1, 2), min_df=2, max_features=MAX_FEATURES, sublinear_tf=True
    )
    try:
        vectorizer.fit(_strings(strings))
    except ValueError:  # no term in 2+ rows: no features
        return {}, np.zeros(0)
    vocabulary = {str(k): int(v) for k, v in vectorizer.vocabulary_.items()}
    return vocabulary, vectorizer.idf_.astype(np.float64)


def vectors(strings: pd.Series, vocabulary: dict[str, int], idf: np.ndarray) -> Any:
    """Return the rows' TF-IDF (a sparse matrix), as ``TfidfVectorizer`` gives it."""
    from sklearn.feature_extraction.text import CountVectorizer
    from sklearn.preprocessing import normalize

    if not vocabulary:
        from scipy.sparse import csr_matrix

        return csr_matrix((len(strings), 0))
    counts = CountVectorizer(vocabulary=vocabulary, ngram_range=(1, 2)).transform(
        _strings(strings)
    )
    counts = counts.astype(np.float64)
    counts.data = 1.0 + np.log(counts.data)  # sublinear counts
    return normalize(counts.multiply(idf).tocsr())


def fit_line(
    A: Any,
    target: np.ndarray,
    objective: str,
    width: int,
    folds: Sequence[tuple[np.ndarray, np.ndarray]],
    sample_weight: np.ndarray | None,
    strengths: Sequence[float] = CS,
    rescale: bool = False,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Cross-fit a linear model of ``target`` on ``A``, its strength chosen out of fold.

    Each of the ``strengths`` (inverse regularisation) gets a model per fold
    (side by side on the cores); the one whose out-of-fold scores do best
    (``_loss``) is kept. Returns each row's score from the fold model that did
    not see it (n, width), and the folds' mean coefficients (width, n_features)
    and intercepts (width,): a new row's score is the mean of the fold models'
    scores. Rows whose target is NaN are scored, not learned from.

    ``rescale``: a binary line's scores become ``a * s + b``, the logistic
    regression of the label on its out-of-fold scores (Platt scaling), folded
    into the coefficients: logits, where the choice by ROC AUC heeds only their
    order (on 200 Pima rows it chose C 0.01, whose liblinear scores span 0.1).
    """
    from concurrent.futures import ThreadPoolExecutor

    from widemm.preprocessing.boosting import cores

    known = ~np.isnan(target)
    if A.shape[1] == 0:
        return np.zeros((A.shape[0], width)), np.zeros((width, 0)), np.zeros(width)
    trains = [train[known[train]] for train, _ in folds]

    def fit(job: tuple[float, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        strength, train = job
        model = _model(objective, strength).fit(
            A[train], _labels(target[train], objective), **_weight(sample_weight, train)
        )
        return _full(model, objective, width, A.shape[1])

    with ThreadPoolExecutor(cores()) as pool:
        jobs = [(c, train) for c in strengths for train in trains]
        fitted = list(pool.map(fit, jobs))
    weight = None if sample_weight is None else sample_weight[known]
    choices = []
    for i in range(len(strengths)):
        lines = fitted[i * len(folds) : (i + 1) * len(folds)]
        scores = np.zeros((A.shape[0], width))
        for (coef, intercept), (_, held) in zip(lines, folds, strict=True):
            scores[held] = A[held] @ coef.T + intercept
        loss = _loss(scores[known], target[known], objective, weight)
        choices.append((loss, i, scores, lines))
    _, _, scores, lines = min(choices, key=lambda choice: choice[:2])
    coef, intercept = (
        np.mean([c for c, _ in lines], 0),
        np.mean([b for _, b in lines], 0),
    )
    if rescale and objective == "binary" and len(np.unique(target[known])) == 2:
        a, b = _platt(scores[known], target[known], weight)
        scores, coef, intercept = a * scores + b, a * coef, a * intercept + b
    return scores, coef, intercept


def _platt(
    scores: np.ndarray, target: np.ndarray, weight: np.ndarray | None
) -> tuple[float, float]:
    """Return the slope and intercept of the logistic regression of ``target``."""
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression(C=np.inf)  # unpenalised
    model.fit(scores, target.astype(np.int64), sample_weight=weight)
    return float(model.coef_[0, 0]), float(model.intercept_[0])


def _full(
    model: Any, objective: str, width: int, n_features: int
) -> tuple[np.ndarray, np.ndarray]:
    """Return the model's coefficients (width, n_features) and intercepts (width,).

    Classes a multiclass fold did not see get a score far below the others.
    """
    coef = np.atleast_2d(model.coef_).astype(np.float64)
    intercept = np.atleast_1d(model.intercept_).astype(np.float64)
    if objective != "multiclass" or coef.shape[0] == width:
        return coef, intercept
    full_coef, full_intercept = np.zeros((width, n_features)), np.full(width, -30.0)
    present = model.classes_.astype(np.int64)
    if len(present) == 2:  # a binary model: its one row is the second class's
        full_coef[present[1]], full_intercept[present[1]] = coef[0], intercept[0]
        full_intercept[present[0]] = 0.0
    else:
        full_coef[present], full_intercept[present] = coef, intercept
    return full_coef, full_intercept


def _loss(
    scores: np.ndarray, target: np.ndarray, objective: str, weight: np.ndarray | None
) -> float:
    """How badly out-of-fold ``scores`` (n, width) follow ``target``: lower is better.

    Regression: squared error; multiclass: log loss; binary: minus the ROC AUC,
    the order of the scores being what the trees split on. Choosing by ROC AUC
    instead of log loss on every fold's held-out rows, the linear model's test
    ROC AUC, mean of 5 samples of the clothing reviews (4,000 test rows), rose
    by 0.0000-0.0034 for 500, 1,500 and 4,000 training rows (review text and
    title alike); on the fine-food reviews 0.8765 -> 0.879 (log loss chose
    16, ROC AUC 4; TF-IDF + logistic regression with C by 5-fold CV: 0.8797).
    """
    from scipy.special import softmax
    from sklearn.metrics import log_loss, mean_squared_error, roc_auc_score

    if objective == "regression":
        return float(mean_squared_error(target, scores[:, 0], sample_weight=weight))
    labels = target.astype(np.int64)
    if objective == "binary" and len(np.unique(labels)) == 2:
        return -float(roc_auc_score(labels, scores[:, 0], sample_weight=weight))
    if objective == "binary":
        scores = np.hstack([np.zeros_like(scores), scores])
    proba = softmax(scores, axis=1)
    return float(
        log_loss(labels, proba, labels=range(proba.shape[1]), sample_weight=weight)
    )


def _model(objective: str, strength: float | None) -> Any:
    from sklearn.linear_model import LogisticRegression, Ridge

    strength = 1.0 if strength is None else strength
    if objective == "regression":
        return Ridge(alpha=1.0 / strength)
    solver = "liblinear" if objective == "binary" else "lbfgs"
    return LogisticRegression(C=strength, solver=solver, max_iter=300)


def _labels(target: np.ndarray, objective: str) -> np.ndarray:
    return target if objective == "regression" else target.astype(np.int64)


def _weight(sample_weight: np.ndarray | None, rows: np.ndarray) -> dict[str, Any]:
    return {} if sample_weight is None else {"sample_weight": sample_weight[rows]}


def _strings(strings: pd.Series) -> list[str]:
    return [v if isinstance(v, str) else "" for v in strings.tolist()]


def line_scores(lines: list[list[np.ndarray]], matrices: list[Any]) -> list[Any]:
    """Each text column's linear model's scores (n_rows, width)."""
    return [A @ coef.T + icpt for (coef, icpt), A in zip(lines, matrices, strict=True)]


def fit_slopes(
    cont: np.ndarray, target: np.ndarray, sample_weight: np.ndarray | None
) -> list[float]:
    """Return a ridge regression's (alpha 1) coefficients of ``target`` on ``cont``."""
    from sklearn.linear_model import Ridge

    ridge = Ridge(alpha=1.0).fit(cont, target, sample_weight=sample_weight)
    return ridge.coef_.tolist()
