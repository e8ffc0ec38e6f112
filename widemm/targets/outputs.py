"""From a model's logits to what its users get: the one decoding path.

The estimators (``predict``, ``predict_proba``, ``predict_quantiles``,
``scores``), the ONNX model without torch (:mod:`widemm.onnx_model`), the command line,
the service, MLflow and the report all decode through :class:`Outputs`, so a
prediction, a probability, a file's row and a JSON answer agree everywhere.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from widemm.heads import Kind
from widemm.targets.labels import Labels, LabelSets
from widemm.targets.values import Values

Target = Labels | LabelSets | Values


@dataclass(frozen=True)
class Block:
    """One target's block of a model's logits, and what it means.

    ``kind`` is the target's kind, ``classes`` its class (or label) names;
    regression outputs are ``logit * scale + shift`` in the target's units. The
    block is ``width`` logits from ``start``, the target named ``name``.
    """

    kind: Kind
    classes: np.ndarray | None = None
    scale: float = 1.0
    shift: float = 0.0
    start: int = 0
    width: int | None = None
    name: str = "y"


class Outputs:
    """A model's targets, their blocks side by side in its logits.

    Parameters
    ----------
    targets : sequence of Labels, LabelSets or Values
        In the order of their blocks.
    columns : sequence of str, optional
        A regressor's target columns (several for one ``Values`` target): they
        name its predictions and scores.
    """

    def __init__(
        self, targets: Sequence[Target], columns: Sequence[str] | None = None
    ) -> None:
        self.targets = list(targets)
        self.columns = [] if columns is None else [str(c) for c in columns]

    @property
    def several(self) -> bool:
        """Several tasks (a ``WideDeepMultiTask``): frames and dicts by task."""
        return len(self.targets) > 1

    def describe(self) -> dict[str, Any]:
        """Describe what the outputs are, JSON-ready: ``task`` and ``tasks``.

        ``task``: "classification" (with its ``classes`` or labels),
        "regression" or "multitask"; ``tasks``: each target's name, kind, and
        classes, labels or quantiles.
        """
        tasks = []
        for t in self.targets:
            entry: dict[str, Any] = {"name": t.name, "kind": t.kind}
            if isinstance(t, Labels):
                entry["classes"] = _plain(t.classes_)
            elif isinstance(t, LabelSets):
                entry["labels"] = _plain(t.labels_)
            elif t.quantiles is not None:
                entry["quantiles"] = list(t.quantiles)
            tasks.append(entry)
        out: dict[str, Any] = {"tasks": tasks}
        target = self.targets[0]
        if self.several:
            out["task"] = "multitask"
        elif isinstance(target, Values):
            out["task"] = "regression"
        else:
            out["task"] = "classification"
            out["classes"] = _plain(target.class_names)
        return out

    def block(self, target: Any = None) -> Block:
        """Return the block of logits that stands for ``target``.

        ``target``: a task's name, or a column of a multi-target regressor
        (one value: its median with quantiles); None: the first task (its first
        column). An explanation explains this block.
        """
        names = [t.name for t in self.targets]
        if target is None or (self.several and target in names):
            i, column = (names.index(target) if target is not None else 0), 0
        elif target in self.columns:  # a column of a multi-target regressor
            i, column = 0, self.columns.index(target)
        else:
            known = names if self.several else self.columns
            raise ValueError(
                f"target={target!r} is not one of this model's targets: {known}."
            )
        start = sum(t.n_outputs for t in self.targets[:i])
        t = self.targets[i]
        if isinstance(t, Values):
            q = list(t.quantiles or [0.5])
            start += column * len(q) + q.index(0.5)
            scale, shift = float(t.scale_[column]), float(t.mean_[column])
            return Block("regression", None, scale, shift, start, 1, t.name)
        return Block(t.kind, t.class_names, 1.0, 0.0, start, t.n_outputs, t.name)

    def blocks(self, logits: np.ndarray) -> list[np.ndarray]:
        """Cut ``logits`` into each target's block."""
        return _cut(logits, [t.n_outputs for t in self.targets])

    def code_blocks(self, codes: np.ndarray) -> list[np.ndarray]:
        """Cut encoded targets (the estimator's ``y`` codes) into each target's."""
        codes = codes.reshape(len(codes), -1)
        return _cut(codes, [t.n_columns for t in self.targets])

    def predict(self, logits: np.ndarray, index: pd.Index | None = None) -> Any:
        """Return what ``predict`` returns.

        One target: its predictions (one value a row: shape (n_rows,)); several
        tasks: a frame of a column per task, indexed by ``index``.
        """
        blocks = self.blocks(logits)
        index = _index(logits, index)
        if self.several:
            pairs = zip(self.targets, blocks, strict=True)
            columns = {t.name: _column(t.predict(b)) for t, b in pairs}
            return pd.DataFrame(columns, index=index)
        target, block = self.targets[0], blocks[0]
        values = target.predict(block)
        if isinstance(target, Values) and target.n_targets_ == 1:
            return values[:, 0]
        return values

    def proba(self, logits: np.ndarray, index: pd.Index | None = None) -> Any:
        """Return what ``predict_proba`` returns.

        One target: (n_rows, n_classes or n_labels); several tasks: per
        classification task, a frame of a column per class or label.
        """
        blocks, index = self.blocks(logits), _index(logits, index)
        if not self.several:
            target = self.targets[0]
            if isinstance(target, Values):
                raise ValueError("A regression target has no probabilities.")
            return target.proba(blocks[0])
        return {
            t.name: pd.DataFrame(t.proba(b), index=index, columns=t.class_names)
            for t, b in zip(self.targets, blocks, strict=True)
            if not isinstance(t, Values)
        }

    def quantiles(self, logits: np.ndarray) -> np.ndarray:
        """Return a regressor's quantiles: (n_rows, n_quantiles), or per column."""
        target = self.targets[0]
        if self.several or not isinstance(target, Values) or target.quantiles is None:
            raise ValueError(
                "This model predicts no quantiles: fit it with quantiles=(0.05, 0.5, "
                "0.95), say."
            )
        values = target.quantiles_of(self.blocks(logits)[0])
        return values[:, 0] if target.n_targets_ == 1 else values

    def table(self, logits: np.ndarray, index: pd.Index | None = None) -> pd.DataFrame:
        """Predictions as a file's columns, indexed by ``index``.

        ``prediction`` (``prediction_<label or column>`` for several), then
        ``proba_<class>`` or ``quantile_<level>``; several tasks: a column per
        task, then ``proba_<task>_<class>``.
        """
        index = _index(logits, index)
        predicted = self.predict(logits, index)
        if self.several:
            out = predicted
            for task, proba in self.proba(logits, index).items():
                out = out.join(proba.add_prefix(f"proba_{task}_"))
            return out
        target = self.targets[0]
        if np.ndim(predicted) == 2:
            names = self.columns if isinstance(target, Values) else target.class_names
            out = pd.DataFrame(predicted, index=index)
            out = out.set_axis([f"prediction_{n}" for n in names], axis=1)
        else:
            out = pd.DataFrame({"prediction": predicted}, index=index)
        if isinstance(target, Values):
            if target.quantiles is not None and target.n_targets_ == 1:
                q = self.quantiles(logits)
                for j, level in enumerate(target.quantiles):
                    out[f"quantile_{level:g}"] = q[:, j]
            return out
        proba = target.proba(self.blocks(logits)[0])
        for j, label in enumerate(target.class_names):
            out[f"proba_{label}"] = proba[:, j]
        return out

    def records(
        self, logits: np.ndarray, index: pd.Index | None = None
    ) -> dict[str, Any]:
        """Return predictions as JSON-ready lists, one entry a row.

        ``index``, ``prediction`` (a multilabel row's: the list of its labels),
        and the class ``probabilities`` (several tasks: by task) or the
        ``quantiles``.
        """
        index = _index(logits, index)
        out: dict[str, Any] = {"index": index.tolist()}
        if self.several:
            out["prediction"] = _records(self.predict(logits, index))
            proba = self.proba(logits, index)
            out["probabilities"] = [
                {task: p.iloc[i].to_dict() for task, p in proba.items()}
                for i in range(len(index))
            ]
            return out
        target, block = self.targets[0], self.blocks(logits)[0]
        if isinstance(target, Values):
            out["prediction"] = self.predict(logits, index).tolist()
            if target.quantiles is not None:
                out["quantiles"] = self.quantiles(logits).tolist()
            return out
        labels = [str(c) for c in target.class_names]
        proba = target.proba(block)
        if isinstance(target, LabelSets):
            chosen = target.predict_indicator(block).astype(bool)
            out["prediction"] = [np.asarray(labels)[row].tolist() for row in chosen]
        else:
            out["prediction"] = _plain(target.predict(block))
        out["probabilities"] = [dict(zip(labels, row, strict=True)) for row in proba]
        return out

    def scores(self, logits: np.ndarray, codes: np.ndarray) -> dict[str, float]:
        """Score ``logits`` against encoded targets (see :mod:`widemm.scores`).

        One target: its scores; several tasks: ``<task>_<score>``.
        """
        out: dict[str, float] = {}
        pairs = zip(self.blocks(logits), self.code_blocks(codes), strict=True)
        for target, (block, code) in zip(self.targets, pairs, strict=True):
            if isinstance(target, Values):
                scores = target.scores(block, code, self.columns)
            else:
                scores = target.scores(block, code)
            out.update({self.score_name(target, k): v for k, v in scores.items()})
        return out

    def score_name(self, target: Target, score: str) -> str:
        """Return the name of ``target``'s ``score`` in :meth:`scores`.

        With several tasks ``<task>_<score>``; one target's are plain.
        """
        return f"{target.name}_{score}" if self.several else score


def _index(logits: np.ndarray, index: pd.Index | None) -> pd.Index:
    """Return ``index``, or positions 0 .. n_rows - 1 without one."""
    return pd.RangeIndex(len(logits)) if index is None else index


def _cut(array: np.ndarray, widths: Sequence[int]) -> list[np.ndarray]:
    edges = np.cumsum([0, *widths])
    return [array[:, a:b] for a, b in itertools.pairwise(edges)]


def _column(values: np.ndarray) -> Any:
    """One task's predictions as one column (a regression task has one value)."""
    return values.reshape(len(values)) if values.ndim == 2 else values


def _plain(values: Any) -> list[Any]:
    """Return values as JSON-ready objects (numpy scalars to int, float, str)."""
    return [v.item() if isinstance(v, np.generic) else v for v in values]


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Return a frame's rows as dicts of JSON-ready values."""
    rows = frame.to_dict("records")
    return [dict(zip(row, _plain(row.values()), strict=True)) for row in rows]
