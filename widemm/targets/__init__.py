r"""Targets: what users predict <-> the target columns and heads the model trains.

One target object per task, each a small scikit-learn-style object (parameters,
then fitted ``name_`` attributes, saved with the model):

- :class:`Labels`: one column of class labels (binary or multiclass).
- :class:`LabelSets`: several labels per row (multilabel), given as a 0/1
  indicator matrix, or as one column of lists or delimited strings.
- :class:`Values`: one or more numeric columns (regression), each standardised
  on its own; optionally predicting quantiles.

:class:`Outputs` decodes a model's logits, all its targets' blocks at once, into
what every caller returns: predictions, probabilities, tables, JSON and scores.

Each ``fit``\s on the training target, ``encode``\s a target into float32 columns
(NaN where unknown; missing values are errors unless ``allow_missing``), gives
the :class:`~widemm.training.objective.Head` that trains it, and turns the
model's block of logits back into predictions.
"""

from __future__ import annotations

from typing import Any

from widemm.heads import Kind
from widemm.targets.common import label_kind, probabilities, standardise
from widemm.targets.labels import Labels, LabelSets, join_labels, split_labels
from widemm.targets.outputs import Block, Outputs, Target
from widemm.targets.values import Values

__all__ = [
    "Block",
    "LabelSets",
    "Labels",
    "Outputs",
    "Target",
    "Values",
    "join_labels",
    "label_kind",
    "make_target",
    "probabilities",
    "split_labels",
    "standardise",
    "target_classes",
]


def make_target(name: str, kind: Kind, **options: Any) -> Target:
    """Return the target object for a task of ``kind`` (options: its parameters)."""
    if kind == "regression":
        return Values(name, **options)
    if kind == "multilabel":
        return LabelSets(name, **options)
    return Labels(name, **options)


def target_classes() -> dict[str, tuple[type, tuple[str, ...]]]:
    """Return the target classes with their fitted attributes: what saving writes."""
    from widemm.persistence import class_key

    fitted = {
        Labels: ("classes_", "class_weights_", "known_", "baseline_", "temperature_"),
        LabelSets: ("form_", "labels_", "known_", "baseline_", "temperature_"),
        Values: ("n_targets_", "mean_", "scale_", "known_", "baseline_", "offsets_"),
    }
    return {class_key(c): (c, keys) for c, keys in fitted.items()}
