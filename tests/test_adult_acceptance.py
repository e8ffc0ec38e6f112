"""The foundation's promise on the full Adult data: default settings, AUC >= 0.915.

The real default (TabM on Adult's 39,000 training rows, not the MLP the other
tests pin): minutes on 2 cores, so marked slow.
"""

import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import train_test_split

from tests.conftest import DATA
from widemm import WideDeepClassifier


@pytest.mark.slow
@pytest.mark.default_tab_model
def test_default_classifier_reaches_target_auc_on_adult():
    df = pd.read_parquet(DATA / "adult.parquet")
    y = df.pop("income")
    X_train, X_test, y_train, y_test = train_test_split(
        df, y, test_size=0.2, stratify=y, random_state=0
    )
    model = WideDeepClassifier(random_state=0).fit(X_train, y_train)
    assert model.pipeline_.tab_model_name() == "tabm"
    auc = roc_auc_score(y_test == ">50K", model.predict_proba(X_test)[:, 1])
    assert auc >= 0.915  # HistGradientBoosting: ~0.928 on this split
