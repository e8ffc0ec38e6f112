"""Explanations: attributions per DataFrame column, text token and image region.

``estimator.explain(X)`` (or :func:`explain` on a fitted ``model_`` and
``pipeline_``) returns an :class:`Explanation`. The explained output is
the model's logit (classifiers: of the positive class, or of each row's predicted
class when there are more than two; see ``class_index``) or the predicted value
(regressors, in the target's units). See ``widemm.explain.attribution`` for the
methods, their exactness and their cost.
"""

from widemm.explain.columns import explain
from widemm.explain.explanation import METHODS, Explanation, Method

__all__ = ["METHODS", "Explanation", "Method", "explain"]
