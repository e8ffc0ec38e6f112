"""``Explanation``: the attributions of some rows, their drill-down and plots."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd
import torch

from widemm.data import take
from widemm.models import WideDeep
from widemm.pipeline import FeaturePipeline

Method = Literal["gradient", "permutation"]
METHODS = ("gradient", "permutation")


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
    tree_values : DataFrame or None
        The trees' share per column they read (TreeSHAP against the
        background), before folding; None without trees.
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
    tree_values: pd.DataFrame | None
    base_value: pd.Series
    output: pd.Series
    method: str
    output_name: str
    data: pd.DataFrame
    kind: str
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
            check_method(method or self.method),
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
            check_method(method or self.method),
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
        from widemm.explain.plots import importance, regions, tokens, waterfall

        draw: dict[str, Callable[..., Any]] = {
            "waterfall": waterfall,
            "importance": importance,
            "tokens": tokens,
            "regions": regions,
        }
        if kind not in draw:
            raise ValueError(f"kind must be one of {sorted(draw)}, got {kind!r}.")
        return draw[kind](self, **kwargs)

    def output_of(self, row: Any) -> str:
        """Name what is explained for one row (an index label): ``"logit of cat"``."""
        if self._classes is None or self.kind == "binary":
            return self.output_name
        i = int(self.data.index.get_indexer([row])[0])
        return f"logit of {self._classes[int(self._target[i]) - self._start]}"

    def _row(self, row: Any) -> tuple[pd.DataFrame, dict[str, Any], int]:
        if row not in self.data.index:
            raise KeyError(f"Row {row!r} is not among the explained rows.")
        i = int(self.data.index.get_indexer([row])[0])
        inputs = take(self._inputs, torch.tensor([i]))
        return self.data.iloc[[i]], inputs, int(self._target[i])


def check_method(method: str) -> Method:
    """Return ``method`` if it is one of ``METHODS``; refuse it otherwise."""
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}.")
    return method  # type: ignore[return-value]
