"""The promise on the full Adult data: default settings tie the trees, in seconds.

The real default (the marker restores the rule the other tests pin): LightGBM
cross-fitted beside an MLP on Adult's 39,000 training rows.
"""

import pytest
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import train_test_split

from widemm import WideDeepClassifier
from widemm.datasets import load_adult


@pytest.mark.default_tab_model
def test_default_classifier_reaches_target_auc_on_adult():
    df = load_adult()
    y = df.pop("income")
    X_train, X_test, y_train, y_test = train_test_split(
        df, y, test_size=0.2, stratify=y, random_state=0
    )
    model = WideDeepClassifier(random_state=0).fit(X_train, y_train)
    assert model.pipeline_.tab_model_name() == "mlp"  # beside the trees
    assert "trees" in model.pipeline_.preprocessors_
    auc = roc_auc_score(y_test == ">50K", model.predict_proba(X_test)[:, 1])
    assert auc >= 0.927  # HistGradientBoosting: 0.9283 on this split
