"""Where each target's outputs sit in a multi-head model's logits."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from widemm.targets import Labels, Target, Values


def blocks(
    targets: Sequence[Target], logits: np.ndarray, target: np.ndarray | None = None
) -> tuple[list[np.ndarray], list[Any]]:
    """Cut ``logits`` (and the encoded ``target``) into each target's block."""
    out: list[np.ndarray] = []
    ys: list[Any] = []
    o = c = 0
    for t in targets:
        head = t.head()
        out.append(logits[:, o : o + head.n_outputs])
        if target is not None:
            ys.append(target.reshape(len(target), -1)[:, c : c + head.n_targets])
        else:
            ys.append(None)
        o, c = o + head.n_outputs, c + head.n_targets
    return out, ys


def explained(
    targets: Sequence[Target], columns: Sequence[str] | None, target: Any = None
) -> Any:
    """Describe the logit block that explaining ``target`` reads (``Output``).

    ``target``: a task's name, or a column of a multi-target regressor
    (``columns``); None: the first task (its first column).
    """
    from widemm.explain import Output

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
    start = sum(t.head().n_outputs for t in targets[:i])
    t = targets[i]
    if isinstance(t, Values):
        q = list(t.quantiles or [0.5])
        start += column * len(q) + q.index(0.5)
        scale, shift = float(t.scale_[column]), float(t.mean_[column])
        return Output("regression", None, scale, shift, start, 1, t.name)
    labels = t.classes_ if isinstance(t, Labels) else t.labels_
    return Output(t.kind, labels, 1.0, 0.0, start, t.head().n_outputs, t.name)
