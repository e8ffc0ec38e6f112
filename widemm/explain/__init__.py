"""Explanations: attributions per DataFrame column, text token and image region.

``estimator.explain(X)`` (or :func:`explain` on a fitted ``model_`` and
``pipeline_``) returns an :class:`Explanation`. The explained output is
the model's logit (classifiers: of the positive class, or of each row's predicted
class when there are more than two; see ``class_index``) or the predicted value
(regressors, in the target's units). See ``widemm.explain.attribution`` for the
methods, their exactness and their cost.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd
import torch

from widemm.data import FrameDataset, take
from widemm.explain.attribution import attribute_gradient, attribute_permutation
from widemm.explain.players import WIDE, Players
from widemm.models import WideDeep
from widemm.pipeline import FeaturePipeline
from widemm.preprocessing.wide import CROSS_SEP
from widemm.runtime import seeded
from widemm.training import Task

Method = Literal["gradient", "permutation"]
METHODS = ("gradient", "permutation")


@dataclass(frozen=True)
class Output:
    """What the explained block of a model's outputs means.

    ``task`` is its kind, ``classes`` its class (or label) names; regression
    outputs are ``logit * scale + shift`` in the target's units. The block is
    ``width`` logits from ``start`` (a multi-task model's task), named ``name``.
    """

    task: Task
    classes: np.ndarray | None = None
    scale: float = 1.0
    shift: float = 0.0
    start: int = 0
    width: int | None = None
    name: str = "y"


@dataclass
class Explanation:
    """Attributions of a model's outputs on some rows, and drill-down into them.

    Attributes
    ----------
    values : DataFrame
        One row per explained row (same index as X), one column per input column.
        The wide part's share is folded into the columns it reads (a cross split
        evenly among its columns); a ``"wide"`` column remains only for what
        belongs to no explained column.
    wide_values : DataFrame or None
        The wide part's share per wide input (a column or a cross), before
        folding; None without a wide part.
    base_value : Series
        Mean output over the background, per row (one value unless the explained
        class differs between rows).
    output : Series
        The model's output per row; ``base_value + values.sum(1)`` equals it up to
        ``max_error``.
    method : str
        ``"gradient"`` or ``"permutation"``.
    output_name : str
        What is explained, e.g. ``"logit of >50K"`` or ``"value"``.
    data : DataFrame
        The explained rows.
    model, pipeline : WideDeep, FeaturePipeline
        What was explained (for drill-down and plots).
    """

    values: pd.DataFrame
    wide_values: pd.DataFrame | None
    base_value: pd.Series
    output: pd.Series
    method: str
    output_name: str
    data: pd.DataFrame
    task: str
    model: WideDeep = field(repr=False)
    pipeline: FeaturePipeline = field(repr=False)
    _inputs: dict[str, Any] = field(repr=False)
    _target: torch.Tensor = field(repr=False)
    _scale: float = field(repr=False, default=1.0)
    _classes: np.ndarray | None = field(repr=False, default=None)
    _start: int = field(repr=False, default=0)  # the explained block's first logit

    @property
    def max_error(self) -> float:
        """Largest |base_value + sum of attributions - output| over the rows."""
        total = self.base_value + self.values.sum(axis=1)
        return float((total - self.output).abs().max())

    def to_frame(self) -> pd.DataFrame:
        """Long form: one row per (row, column) with its value and attribution."""
        values = self.values.rename_axis(index="row", columns="column")
        long = values.stack().rename("attribution").reset_index()
        data = self.data.astype(object).rename_axis(index="row", columns="column")
        cells = data.stack(future_stack=True).rename("value").reset_index()
        long = long.merge(cells, on=["row", "column"], how="left")
        base = self.base_value.rename("base_value").rename_axis("row").reset_index()
        return long.merge(base, on="row")[
            ["row", "column", "value", "attribution", "base_value"]
        ]

    def __repr__(self) -> str:
        top = self.importance().head(5)
        ranking = ", ".join(f"{c} {v:.3g}" for c, v in top.itertuples(index=False))
        lines = [
            f"Explanation of the {self.output_name}, {len(self.values)} rows, "
            f"method {self.method!r} (sum error {self.max_error:.2g})",
            f"base value {self.base_value.iloc[0]:.4g}; top columns by mean "
            f"|attribution|: {ranking}",
        ]
        for label in self.values.index[:5]:
            row = self.values.loc[label]
            order = row.abs().sort_values(ascending=False).index[:3]
            parts = ", ".join(f"{c} {row[c]:+.3g}" for c in order)
            lines.append(
                f"  row {label!r}: output {self.output[label]:.4g} = base + {parts} ..."
            )
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        head = self.values.head(10).round(4)
        table = head.assign(base_value=self.base_value, output=self.output).to_html()
        summary = repr(self).splitlines()
        return f"<p><b>{summary[0]}</b><br>{summary[1]}</p>{table}"

    def importance(self) -> pd.DataFrame:
        """Global importance: mean |attribution| per column, largest first."""
        mean_abs = self.values.abs().mean().sort_values(ascending=False)
        return pd.DataFrame({"column": mean_abs.index, "importance": mean_abs.values})

    def tokens(self, row: Any, column: str, method: Method | None = None) -> Any:
        """Attribution of each token of text ``column`` in row ``row`` (an index label).

        Returns a DataFrame with ``token`` and ``attribution`` (output units).
        """
        from widemm.explain.detail import token_attributions

        frame, inputs, target = self._row(row)
        out = token_attributions(
            self.model,
            self.pipeline,
            frame,
            inputs,
            column,
            target,
            _method(method or self.method),
        )
        return out.assign(attribution=out["attribution"] * self._scale)

    def regions(
        self, row: Any, column: str, grid: int = 7, method: Method | None = None
    ) -> np.ndarray:
        """(grid, grid) attributions of the cells of image ``column`` in row ``row``."""
        from widemm.explain.detail import region_attributions

        frame, inputs, target = self._row(row)
        values = region_attributions(
            self.model,
            self.pipeline,
            frame,
            inputs,
            column,
            target,
            _method(method or self.method),
            grid=grid,
        )
        return values * self._scale

    def plot(self, kind: str = "waterfall", **kwargs: Any) -> Any:
        """Draw the explanation with matplotlib and return the Figure.

        kind : {"waterfall", "importance", "tokens", "regions"}
            ``"waterfall"``: one row's column contributions from the base value to
            the output (``row=`` index label, default the first; ``max_columns``).
            ``"importance"``: global importance bars (``max_columns``).
            ``"tokens"``: a text column's tokens shaded by attribution (``row``,
            ``column``). ``"regions"``: an image column with its region
            attributions overlaid (``row``, ``column``, ``grid``).
        """
        from widemm.explain import plots

        draw: dict[str, Callable[..., Any]] = {
            "waterfall": plots.waterfall,
            "importance": plots.importance,
            "tokens": plots.tokens,
            "regions": plots.regions,
        }
        if kind not in draw:
            raise ValueError(f"kind must be one of {sorted(draw)}, got {kind!r}.")
        return draw[kind](self, **kwargs)

    def output_of(self, row: Any) -> str:
        """Name what is explained for one row (an index label): ``"logit of cat"``."""
        if self._classes is None or self.task == "binary":
            return self.output_name
        i = int(self.data.index.get_indexer([row])[0])
        return f"logit of {self._classes[int(self._target[i]) - self._start]}"

    def _row(self, row: Any) -> tuple[pd.DataFrame, dict[str, Any], int]:
        if row not in self.data.index:
            raise KeyError(f"Row {row!r} is not among the explained rows.")
        i = int(self.data.index.get_indexer([row])[0])
        inputs = take(self._inputs, torch.tensor([i]))
        return self.data.iloc[[i]], inputs, int(self._target[i])


def explain(
    model: WideDeep,
    pipeline: FeaturePipeline,
    X: pd.DataFrame,
    background: pd.DataFrame | None = None,
    method: Method = "gradient",
    *,
    output: Output,
    class_index: int | None = None,
    n_background: int = 50,
    n_steps: int = 32,
    n_samples: int = 16,
    random_state: int = 0,
) -> Explanation:
    """Attribute each row's output to its columns (SHAP-style).

    Parameters
    ----------
    model, pipeline : WideDeep, FeaturePipeline
        A fitted estimator's ``model_`` and ``pipeline_``.
    X : DataFrame
        Rows to explain, with the columns the pipeline was fitted on.
    background : DataFrame, optional
        Reference rows; by default the 50 training rows kept at fit, spread
        evenly over the model's outputs (``pipeline.background_``, see
        ``FeaturePipeline.keep_background``), the same at every call.
        ``n_background`` of them are sampled (all 50 by default).
    method : {"gradient", "permutation"}
        Integrated Gradients on each column's layer (fast; exact sum up to
        quadrature error) or permutation-sampled Shapley values over the columns
        (model-agnostic; exact sum, sampled values). See
        :mod:`widemm.explain.attribution`.
    output : Output
        The task and what the outputs mean (class labels, target units).
    class_index : int, optional
        Multiclass: explain this class's logit instead of the predicted one.
    n_steps : int
        Integration steps of the gradient method.
    n_samples : int
        Permutations of the permutation method.
    random_state : int
        Seeds the background sample and the permutations.

    Returns
    -------
    Explanation
    """
    method = _method(method)
    if background is None:
        if getattr(pipeline, "background_", None) is None:
            raise ValueError(
                "This pipeline kept no background rows (an estimator's fit keeps "
                "them): pass background= (e.g. 100 training rows)."
            )
        background = pipeline.background_.infer_objects()
    if len(background) > n_background:
        background = background.sample(n_background, random_state=random_state)
    model = model.eval()
    x = _materialise(pipeline.inputs(X, model))
    bg = _materialise(pipeline.inputs(background, model))
    players = Players.of(pipeline, list(X.columns), x)
    with torch.no_grad():
        out = model(x).double()
        base = model(bg).double().mean(0)
    stop = out.shape[1] if output.width is None else output.start + output.width
    local = _target(out[:, output.start : stop], class_index)
    target = local + output.start  # the explained logit of each row
    if method == "gradient":
        values = attribute_gradient(model, players, x, bg, target, n_steps=n_steps)
    else:
        with seeded(random_state):
            values = attribute_permutation(model, players, x, bg, target, n_samples)
    scale, shift = output.scale, output.shift
    rows = torch.arange(len(X))
    table = pd.DataFrame(
        values.double().numpy() * scale, index=X.index, columns=players.names
    )
    wide = None
    if WIDE in table:
        wide = _wide_shares(model, pipeline, x, bg, target) * scale
        table = _fold(table, wide, pipeline)
    return Explanation(
        values=table,
        wide_values=wide,
        base_value=pd.Series(base[target].numpy() * scale + shift, index=X.index),
        output=pd.Series(out[rows, target].numpy() * scale + shift, index=X.index),
        method=method,
        output_name=_output_name(output, local),
        task=output.task,
        data=X,
        model=model,
        pipeline=pipeline,
        _inputs=x,
        _target=target,
        _scale=scale,
        _classes=output.classes,
        _start=output.start,
    )


def _wide_shares(
    model: WideDeep,
    pipeline: FeaturePipeline,
    x: dict[str, Any],
    background: dict[str, Any],
    target: torch.Tensor,
) -> pd.DataFrame:
    """Split the wide part's attribution among its inputs (a column or a cross).

    The wide part adds one weight per input, so its share of ``output - base``
    splits exactly: an input's weight for the row minus its mean over the
    background.
    """
    assert model.wide is not None
    weight = model.wide.linear.weight.detach().double()  # (n_indices, n_outputs)
    row = weight[x["wide"]]  # (n_x, n_inputs, n_outputs)
    base = weight[background["wide"]].mean(0)  # (n_inputs, n_outputs)
    shares = (row - base)[torch.arange(len(row)), :, target]
    inputs = pipeline.preprocessors_["wide"].inputs_  # a text column's n-grams:
    table = pd.DataFrame(shares.numpy().T, index=inputs)  # several index columns
    return table.groupby(level=0, sort=False).sum().T


def _fold(table: pd.DataFrame, wide: pd.DataFrame, pipeline: FeaturePipeline) -> Any:
    """Move the wide player's value into the columns its inputs read.

    A cross's share is split evenly among its columns; what belongs to no
    explained column stays under ``"wide"`` (dropped when nothing is left).
    """
    table = table.copy()
    wide = wide.set_axis(table.index)
    crosses = {CROSS_SEP.join(map(str, c)): c for c in pipeline.schema_.crossed_cols}
    for name in wide.columns:
        columns = crosses.get(name, (name,))
        for column in columns:
            if column in table:
                part = wide[name] / len(columns)
                table[column] += part
                table[WIDE] -= part
    if (table[WIDE].abs() < 1e-9 + 1e-6 * table.abs().max().max()).all():
        table = table.drop(columns=WIDE)
    return table


def _method(method: str) -> Method:
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}.")
    return method  # type: ignore[return-value]


def _materialise(inputs: dict[str, Any]) -> dict[str, Any]:
    """All rows as tensors (decodes lazily loaded images)."""
    data = FrameDataset(inputs)
    return data[slice(0, len(data))]


def _target(output: torch.Tensor, class_index: int | None) -> Any:
    n_out = output.shape[1]
    if class_index is not None:
        if not 0 <= class_index < n_out:
            raise ValueError(
                f"class_index must be in [0, {n_out}) for this model, "
                f"got {class_index}."
            )
        return torch.full((len(output),), class_index, dtype=torch.long)
    if n_out == 1:
        return torch.zeros(len(output), dtype=torch.long)
    return output.argmax(1)


def _output_name(output: Output, target: torch.Tensor) -> str:
    of = "" if output.name == "y" else f" ({output.name})"
    if output.classes is None:
        return "value" + of
    if output.task == "binary":
        return f"logit of {output.classes[1]}{of}"
    classes = output.classes[target.unique().numpy()]
    one = len(classes) == 1
    what = "label" if output.task == "multilabel" else "class"
    return (f"logit of {classes[0]}" if one else f"logit of each row's {what}") + of
