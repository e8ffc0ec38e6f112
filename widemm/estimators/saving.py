"""What a saved model may hold: the one allowlist of classes, for save and load."""

from __future__ import annotations

from collections.abc import Iterable

from widemm import persistence
from widemm.pipeline import pipeline_classes
from widemm.targets import target_classes


def saved_classes(estimators: Iterable[type]) -> persistence.Classes:
    """Return the classes a saved model of ``estimators`` may hold: all that loads.

    Each estimator class declares its fitted attributes in ``_fitted``.
    """
    own = {persistence.class_key(c): (c, c._fitted) for c in estimators}  # type: ignore[attr-defined]
    return {**pipeline_classes(), **target_classes(), **own}
