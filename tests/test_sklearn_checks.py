"""scikit-learn's estimator checks on every estimator and preprocessor."""

from sklearn.utils.estimator_checks import parametrize_with_checks

from widemm import WideDeepClassifier, WideDeepMultiTask, WideDeepRegressor
from widemm.preprocessing import (
    ImagePreprocessor,
    TabPreprocessor,
    TextPreprocessor,
    WidePreprocessor,
)

OPTIONS = dict(max_epochs=20, batch_size=64, random_state=0)
ESTIMATORS = [
    WideDeepClassifier(**OPTIONS),
    WideDeepRegressor(**OPTIONS),
    WideDeepMultiTask(**OPTIONS),
    # Text and image columns are no 2-D numeric arrays: these get the API checks.
    TabPreprocessor(),
    WidePreprocessor(),
    TextPreprocessor(),
    ImagePreprocessor(),
]


def expected_failures(estimator):
    # As scikit-learn's own MLP and SGD models: training on shuffled mini-batches
    # with a validation split is not exactly (rtol 1e-7) equivalent to training on
    # repeated rows. tests/test_multitask.py checks the equivalence where it
    # holds: zero weight == dropped row exactly; weight 2 ~= a repeated row.
    if not isinstance(
        estimator, WideDeepClassifier | WideDeepRegressor | WideDeepMultiTask
    ):
        return {}
    failures = {
        "check_sample_weight_equivalence_on_dense_data": "mini-batch SGD with "
        "early stopping: weights are equivalent in expectation, not to 1e-7",
    }
    return failures


@parametrize_with_checks(ESTIMATORS, expected_failed_checks=expected_failures)
def test_sklearn_compatible(estimator, check):
    check(estimator)
