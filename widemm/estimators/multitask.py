"""WideDeepMultiTask: several targets of any kind, one head each, one model."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from sklearn.utils.multiclass import type_of_target

from widemm.estimators.base import BaseWideDeep
from widemm.heads import KINDS, Kind
from widemm.targets import (
    Target,
    label_kind,
    make_target,
)
from widemm.training.objective import Objective, Weighting


class WideDeepMultiTask(BaseWideDeep):
    r"""One model for several targets: each column of ``Y`` is a task with its head.

    The tasks share the encoders and the fused representation; each has a linear
    head (and its block of the wide part's logits). Each task's kind is inferred
    from its column (:func:`infer_kind`: lists or delimited
    strings -> multilabel, many distinct numbers -> regression, else binary or
    multiclass) unless ``tasks`` gives it. A row whose value is missing for a
    task trains the other tasks only. One task (a 1-D ``y`` or a one-column
    ``Y``) answers as ``WideDeepClassifier`` or ``WideDeepRegressor`` would:
    arrays, scores without the task's name (scikit-learn's checks fit it so).

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
    task_weighting : {"fixed", "uncertainty", "famo", "nash", "gradnorm"}
        ``"fixed"``: the tasks' ``weight``\s. ``"uncertainty"``: weights learned
        with the model (homoscedastic uncertainty, Kendall et al. 2018).
        ``"famo"``: each task's gradient divided by its loss and weighted so
        every task's loss falls at the same relative rate (FAMO, Liu et al.
        2023; :mod:`widemm.training.famo`), at one more forward pass a step.
        ``"nash"``: each step's weights bargained from the tasks' gradients at
        the fusion's output (Nash-MTL, Navon et al. 2022;
        :mod:`widemm.training.nash`), at one backward pass through the heads
        per task a step. ``"gradnorm"``: weights moved each step so a task whose
        loss falls slower pulls harder on the shared layers (GradNorm, Chen et
        al. 2018; :mod:`widemm.training.gradnorm`), from the same gradients.
        Learned weights are reported per epoch in ``history_``
        (``weight_<task>``). The default, ``"fixed"``, is chosen by measurement:
        see the docs' benchmarks.
    class_weight, focal_gamma, quantiles
        Defaults for every classification (or regression) task: see
        :class:`WideDeepClassifier` and :class:`WideDeepRegressor`.
    **params
        The parameters every estimator shares: see :class:`BaseWideDeep`.

    Attributes
    ----------
    targets_ : list of Labels, LabelSets or Values
        Per task, in ``Y``'s column order; ``.kind`` is its kind.
    history_ : DataFrame
        Per epoch: the weighted validation loss (early stopping watches it),
        each task's loss on the baselines' scale, ``valid_<task>_loss`` (its
        own best epoch), and its metric, ``valid_<task>_<metric>``.
    head_shares_ : dict of str to float
        Each target column's (``<task>``, or ``<task>[j]`` for a label or one of
        several values) share of its head's output, chosen on the validation
        rows: what stopping at its own best epoch would keep
        (:mod:`widemm.training.shrinkage`).
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
        heads = [t.head() for t in self.targets_]
        return Objective(heads, self.task_weighting, self.outputs_.scores)

    @property
    def task_names_(self) -> list[str]:
        return [t.name for t in self.targets_]

    def _check_y(self, y: Any, X: pd.DataFrame) -> pd.DataFrame:
        """Y as a frame of a column per task (an array's columns: y0, y1, ...)."""
        if isinstance(y, pd.Series):
            y = y.to_frame(name=y.name if y.name is not None else "y")
        elif not isinstance(y, pd.DataFrame):
            values = np.asarray(y)
            if values.ndim not in (1, 2):
                raise ValueError(
                    "WideDeepMultiTask takes Y as a DataFrame with a column per task "
                    f"(or a 1-D or 2-D array); got shape {values.shape}."
                )
            if values.ndim == 1:
                y = pd.DataFrame({"y": values})
            else:
                y = pd.DataFrame(values).rename(columns=lambda j: f"y{j}")
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

    def predict(self, X: Any) -> Any:
        """Return a column per task, indexed like X (one task: an array).

        Each in the form of its fit column (multilabel: lists or delimited strings).
        """
        return self.outputs_.predict(self.logits(X), self._frame(X).index)

    def predict_proba(self, X: Any) -> Any:
        """Return, per classification task, a frame of probabilities (one: an array).

        A column per class or label, indexed like X.
        """
        return self.outputs_.proba(self.logits(X), self._frame(X).index)

    def score(self, X: Any, y: Any) -> float:
        """Return the mean over tasks of R², micro ROC AUC (multilabel) or accuracy.

        :meth:`scores` gives every task's scores.
        """
        scores = self.scores(X, y)
        primary = {"regression": "r2", "multilabel": "roc_auc_micro"}
        outputs = self.outputs_
        keys = [
            outputs.score_name(t, primary.get(t.kind, "accuracy"))
            for t in self.targets_
        ]
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
