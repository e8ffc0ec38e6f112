"""WideDeepMultiTask: several targets of any kind, one head each, one model."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import r2_score, roc_auc_score
from sklearn.utils.multiclass import type_of_target

from widemm.estimators.base import BaseWideDeep
from widemm.targets import (
    LabelSets,
    Target,
    Values,
    blocks,
    label_kind,
    make_target,
)
from widemm.training.objective import KINDS, Kind, Objective, Weighting


class WideDeepMultiTask(BaseWideDeep):
    r"""One model for several targets: each column of ``Y`` is a task with its head.

    The tasks share the encoders and the fused representation; each has a linear
    head (and its block of the wide part's logits). Each task's kind is inferred
    from its column (:func:`infer_kind`: lists or delimited
    strings -> multilabel, many distinct numbers -> regression, else binary or
    multiclass) unless ``tasks`` gives it. A row whose value is missing for a
    task trains the other tasks only.

    Parameters
    ----------
    tasks : dict, optional
        Per target column: a kind (``"binary"``, ``"multiclass"``,
        ``"multilabel"``, ``"regression"``) or a dict with ``kind`` and any of
        ``weight`` (its share of the loss), ``sep`` (multilabel separator,
        default ","), ``quantiles`` (regression) and ``class_weight``. Columns
        it leaves out are inferred. The default weight is 1, and for a
        multilabel task its number of labels: it weighs as that many binary
        tasks (on movies, 21 genres at weight 1 learned too slowly: micro ROC
        AUC 0.834 against 0.870 alone; at 21, 0.872). Each task's loss is
        measured against its baseline (see ``widemm.training.objective``).
    task_weighting : {"fixed", "uncertainty"}
        ``"fixed"``: the tasks' ``weight``\s. ``"uncertainty"``: weights learned
        with the model (homoscedastic uncertainty, Kendall et al. 2018),
        reported per epoch in ``history_`` (``weight_<task>``).
    class_weight, focal_gamma, quantiles
        Defaults for every classification (or regression) task: see
        :class:`WideDeepClassifier` and :class:`WideDeepRegressor`.
    Other parameters: see :class:`BaseWideDeep`.

    Attributes
    ----------
    targets_ : list of Labels, LabelSets or Values
        Per task, in ``Y``'s column order; ``.kind`` is its kind.
    history_ : DataFrame
        Per epoch: the weighted validation loss (early stopping watches it) and
        each task's metric, ``valid_<task>_<metric>``.
    Others as in :class:`WideDeepClassifier`.

    Examples
    --------
    >>> model = WideDeepMultiTask(random_state=0)
    >>> Y = movies[["Genre", "Meter", "Metacritic"]]
    >>> model.fit(movies[inputs], Y)  # doctest: +SKIP
    >>> model.predict(movies[inputs])  # a column per task  # doctest: +SKIP
    """

    def __init__(
        self,
        *,
        tasks: Mapping[str, Any] | None = None,
        task_weighting: Weighting = "fixed",
        class_weight: str | Mapping[Any, float] | None = None,
        focal_gamma: float | None = None,
        quantiles: Sequence[float] | None = None,
        **params: Any,
    ) -> None:
        super().__init__(**params)
        self.tasks = tasks
        self.task_weighting = task_weighting
        self.class_weight = class_weight
        self.focal_gamma = focal_gamma
        self.quantiles = quantiles

    def _objective(self) -> Objective:
        return Objective([t.head() for t in self.targets_], self.task_weighting)

    @property
    def task_names_(self) -> list[str]:
        return [t.name for t in self.targets_]

    def _check_y(self, y: Any, X: pd.DataFrame) -> pd.DataFrame:
        if isinstance(y, pd.Series):
            y = y.to_frame()
        if not isinstance(y, pd.DataFrame):
            raise TypeError(
                "WideDeepMultiTask takes Y as a DataFrame with a column per task, got "
                f"{type(y).__name__}."
            )
        if len(y) != len(X):
            raise ValueError(f"X has {len(X)} rows but Y has {len(y)}.")
        y = y.set_axis(X.index, axis=0).rename(columns=str)
        unknown = set(self.tasks or {}) - set(y.columns)
        if unknown:
            raise ValueError(
                f"tasks names {sorted(unknown)}, not columns of Y {list(y.columns)}."
            )
        return y

    def _fit_targets(self, y: pd.DataFrame, weight: np.ndarray | None) -> list[Target]:
        targets: list[Target] = []
        for name in y.columns:
            spec = (self.tasks or {}).get(name, {})
            options = dict(spec) if isinstance(spec, Mapping) else {"kind": spec}
            kind = options.pop("kind", None) or infer_kind(
                y[name], options.get("sep", ",")
            )
            if kind not in KINDS:
                raise ValueError(
                    f"tasks[{name!r}]: kind must be one of {KINDS}, got {kind!r}."
                )
            defaults: dict[str, Any] = (
                {"quantiles": self.quantiles}
                if kind == "regression"
                else {"focal_gamma": self.focal_gamma}
                if kind == "multilabel"
                else {
                    "class_weight": self.class_weight,
                    "focal_gamma": self.focal_gamma,
                }
            )
            allowed = {"weight", "sep"} if kind == "multilabel" else {"weight"}
            unknown = set(options) - allowed - set(defaults)
            if unknown:
                raise ValueError(
                    f"tasks[{name!r}] has option(s) {sorted(unknown)} that a {kind} "
                    f"task does not take; it takes {sorted(allowed | set(defaults))}."
                )
            target = make_target(name, kind, allow_missing=True, **defaults, **options)
            target.fit(y[name])
            if kind == "multilabel" and "weight" not in options:
                target.set_params(weight=float(len(target.labels_)))
            targets.append(target)
        return targets

    def _parts(self, y: pd.DataFrame) -> list[Any]:
        missing = set(self.task_names_) - set(y.columns)
        if missing:
            raise ValueError(f"Y lacks the task column(s) {sorted(missing)}.")
        return [y[name] for name in self.task_names_]

    def predict(self, X: Any) -> pd.DataFrame:
        """Return a column per task, indexed like X.

        Each in the form of its fit column (multilabel: lists or delimited strings).
        """
        outs, _ = blocks(self.targets_, self._logits(X))
        index = self._frame(X).index
        return pd.DataFrame(
            {
                t.name: t.predict(b).reshape(len(b))
                if isinstance(t, Values)
                else t.predict(b)
                for t, b in zip(self.targets_, outs, strict=True)
            },
            index=index,
        )

    def predict_proba(self, X: Any) -> dict[str, pd.DataFrame]:
        """Return, per classification task, a frame of probabilities.

        A column per class or label, indexed like X.
        """
        outs, _ = blocks(self.targets_, self._logits(X))
        index = self._frame(X).index
        out = {}
        for t, block in zip(self.targets_, outs, strict=True):
            if not isinstance(t, Values):
                out[t.name] = pd.DataFrame(
                    t.proba(block), index=index, columns=t.class_names
                )
        return out

    def scores(self, X: Any, Y: pd.DataFrame) -> dict[str, float]:
        """Score each task on its known rows.

        Accuracy (binary: ROC AUC too), micro and macro ROC AUC (multilabel), R²
        (regression).
        """
        Y = self._check_y(Y, self._frame(X))
        outs, _ = blocks(self.targets_, self._logits(X))
        out: dict[str, float] = {}
        for t, block, part in zip(self.targets_, outs, self._parts(Y), strict=True):
            codes = t.encode(part)
            known = ~np.isnan(codes).any(axis=1)
            if not known.any():
                continue
            name, z, y = t.name, block[known], codes[known]
            if isinstance(t, Values):
                out[f"{name}_r2"] = float(r2_score(part[known], t.predict(z)[:, 0]))
            elif isinstance(t, LabelSets):
                proba, has = t.proba(z), (y.min(0) == 0) & (y.max(0) == 1)
                out[f"{name}_auc_micro"] = float(
                    roc_auc_score(y, proba, average="micro")
                )
                out[f"{name}_auc_macro"] = float(
                    roc_auc_score(y[:, has], proba[:, has])
                )
            else:
                proba = t.proba(z)
                out[f"{name}_accuracy"] = float((proba.argmax(1) == y[:, 0]).mean())
                if t.kind == "binary" and len(np.unique(y)) == 2:
                    out[f"{name}_auc"] = float(roc_auc_score(y[:, 0], proba[:, 1]))
        return out

    def score(self, X: Any, Y: pd.DataFrame) -> float:
        """Return the mean over tasks of R², micro ROC AUC (multilabel) or accuracy."""
        scores = self.scores(X, Y)
        primary = {"regression": "r2", "multilabel": "auc_micro"}
        keys = [f"{t.name}_{primary.get(t.kind, 'accuracy')}" for t in self.targets_]
        return float(np.mean([scores[k] for k in keys if k in scores]))


def infer_kind(y: pd.Series, sep: str = ",") -> Kind:
    """Guess a target column's task from its known values.

    Lists, or strings of which a fifth or more hold ``sep``: multilabel.
    Numbers: regression if continuous or over 20 distinct values. Else class
    labels: binary or multiclass.
    """
    known = y.dropna()
    if known.empty:
        raise ValueError(f"Target {y.name!r} has no known value.")
    first = known.iloc[0]
    if isinstance(first, list | tuple | set | frozenset | np.ndarray):
        return "multilabel"
    if known.map(lambda v: isinstance(v, str)).all():
        if known.str.contains(sep, regex=False).mean() >= 0.2:
            return "multilabel"
        return label_kind(np.unique(known.to_numpy(dtype=str)))
    if pd.api.types.is_bool_dtype(known.dtype):
        return "binary"
    if pd.api.types.is_numeric_dtype(known.dtype):
        kind = type_of_target(known.to_numpy())
        if kind == "continuous" or known.nunique() > 20:
            return "regression"
    return label_kind(np.unique(known.to_numpy(dtype=str)))
