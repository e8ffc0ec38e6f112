"""The linear text models whose cross-fitted scores the trees read."""

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import KFold

from tests.conftest import DATA
from widemm.preprocessing.lines import CS, fit_line, fit_vocabulary, vectors


@pytest.mark.parametrize("seed", [0, 3])
def test_a_binary_line_keeps_the_strength_best_by_out_of_fold_roc_auc(seed):
    # 400 real reviews where the first fold's log loss picks the weakest
    # regularisation (C 16) and the five folds' ROC AUC a stronger one.
    reviews = pd.read_parquet(DATA / "womens_clothing_reviews.parquet")
    part = reviews.sample(400, random_state=seed)
    A = vectors(part["Review Text"], *fit_vocabulary(part["Review Text"]))
    y = part["Recommended IND"].to_numpy()
    folds = list(KFold(5, shuffle=True, random_state=0).split(A))
    aucs = []
    for strength in CS:
        oof = np.zeros(len(y))
        for train, held in folds:
            model = LogisticRegression(C=strength, solver="liblinear", max_iter=300)
            oof[held] = model.fit(A[train], y[train]).decision_function(A[held])
        aucs.append(roc_auc_score(y, oof))

    scores, coef, intercept = fit_line(
        A, y.astype(np.float64), "binary", 1, folds, None
    )

    assert roc_auc_score(y, scores[:, 0]) == pytest.approx(max(aucs), abs=1e-9)
    assert CS[int(np.argmax(aucs))] < CS[-1]
    assert coef.shape == (1, A.shape[1])
    assert intercept.shape == (1,)


def test_a_rescaled_binary_line_scores_logits_in_the_same_order():
    from scipy.special import expit
    from sklearn.datasets import load_breast_cancer
    from sklearn.metrics import log_loss
    from sklearn.preprocessing import StandardScaler

    from widemm.preprocessing.lines import DENSE_CS

    X, y = load_breast_cancer(return_X_y=True)
    A = StandardScaler().fit_transform(X[:200])
    y = y[:200].astype(np.float64)
    folds = list(KFold(5, shuffle=True, random_state=0).split(A))
    plain, plain_coef, _ = fit_line(A, y, "binary", 1, folds, None, DENSE_CS)
    scores, coef, _ = fit_line(A, y, "binary", 1, folds, None, DENSE_CS, True)
    auc = roc_auc_score(y, plain[:, 0])
    assert roc_auc_score(y, scores[:, 0]) == pytest.approx(auc)
    assert log_loss(y, expit(scores[:, 0])) < 0.7 * log_loss(y, expit(plain[:, 0]))
    again = LogisticRegression(C=np.inf).fit(scores, y)  # Platt: nothing left
    assert again.coef_[0, 0] == pytest.approx(1, abs=0.05)
    assert again.intercept_[0] == pytest.approx(0, abs=0.05)
    slope = coef[0] / plain_coef[0]
    np.testing.assert_allclose(slope, slope[0])  # the same line, rescaled
