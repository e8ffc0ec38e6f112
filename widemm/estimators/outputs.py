"""Which block of a multi-head model's logits an explanation reads."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from widemm.targets import Target, Values


def explained(
    targets: Sequence[Target], columns: Sequence[str] | None, target: Any = None
) -> Any:
    """Describe the logit block that explaining ``target`` reads (``Output``).

    ``target``: a task's name, or a column of a multi-target regressor
    (``columns``); None: the first task (its first column).
    """
    from widemm.explain.explanation import Output

    names = [t.name for t in targets]
    if target is None or (len(targets) > 1 and target in names):
        i, column = (names.index(target) if target is not None else 0), 0
    else:  # a column of a multi-target regressor
        if target not in list(columns or []):
            known = names if len(names) > 1 else list(columns or [])
            raise ValueError(
                f"target={target!r} is not one of this model's targets: {known}."
            )
        i, column = 0, list(columns or []).index(target)
    start = sum(t.n_outputs for t in targets[:i])
    t = targets[i]
    if isinstance(t, Values):
        q = list(t.quantiles or [0.5])
        start += column * len(q) + q.index(0.5)
        scale, shift = float(t.scale_[column]), float(t.mean_[column])
        return Output("regression", None, scale, shift, start, 1, t.name)
    return Output(t.kind, t.class_names, 1.0, 0.0, start, t.n_outputs, t.name)
