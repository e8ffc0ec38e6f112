from sklearn.utils.estimator_checks import parametrize_with_checks

from widemm import WideDeepClassifier, WideDeepRegressor

ESTIMATORS = [
    WideDeepClassifier(max_epochs=20, batch_size=64, random_state=0),
    WideDeepRegressor(max_epochs=20, batch_size=64, random_state=0),
]


def expected_failures(estimator):
    return {}


@parametrize_with_checks(ESTIMATORS, expected_failed_checks=expected_failures)
def test_sklearn_compatible(estimator, check):
    check(estimator)
