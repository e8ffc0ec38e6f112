"""Scikit-learn estimators that wire column roles, preprocessors, model and Trainer."""

from widemm.estimators.base import BaseWideDeep
from widemm.estimators.classifier import WideDeepClassifier
from widemm.estimators.multitask import WideDeepMultiTask
from widemm.estimators.regressor import WideDeepRegressor

ESTIMATORS = (WideDeepClassifier, WideDeepRegressor, WideDeepMultiTask)

__all__ = [
    "ESTIMATORS",
    "BaseWideDeep",
    "WideDeepClassifier",
    "WideDeepMultiTask",
    "WideDeepRegressor",
]
