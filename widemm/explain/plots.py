"""Matplotlib drawings of an Explanation; each returns its Figure.

Drawn on ``matplotlib.figure.Figure`` objects: no global backend or state is
touched, so a notebook's inline plots keep working.
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np
import pandas as pd

from widemm.pipeline import FeaturePipeline


class Explanation(Protocol):
    """What the drawings read of a :class:`widemm.explain.Explanation`."""

    values: pd.DataFrame
    base_value: pd.Series
    output: pd.Series
    output_name: str
    data: pd.DataFrame
    kind: str
    pipeline: FeaturePipeline

    def importance(self) -> pd.DataFrame: ...

    def output_of(self, row: Any) -> str: ...

    def tokens(self, row: Any, column: str) -> Any: ...

    def regions(self, row: Any, column: str, grid: int = 7) -> np.ndarray: ...


POSITIVE, NEGATIVE = "#d62728", "#1f77b4"  # raise / lower the output
SPECIAL = ["[CLS]", "[SEP]", "[PAD]", "<s>", "</s>", "<pad>"]  # not drawn
WIDTH = 90  # characters per line of a token plot


def _figure(width: float, height: float) -> Any:
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained")


def waterfall(
    explanation: Explanation,
    row: Any = None,
    max_columns: int = 10,
    units: str = "logit",
) -> Any:
    """One row: bars from the base value to the output, largest contributions first.

    ``units="probability"`` (binary classifiers) draws the same path through the
    sigmoid: each bar is the change in probability as the columns are added in
    the order shown (a logit is additive, a probability is not).
    """
    row = explanation.data.index[0] if row is None else row
    values = explanation.values.loc[row]
    order = values.abs().sort_values(ascending=False).index
    shown, rest = list(order[:max_columns]), order[max_columns:]
    contributions = values[shown]
    labels = [_label(explanation, row, col) for col in shown]
    if len(rest):
        contributions = pd.concat(
            [contributions, pd.Series({"rest": values[rest].sum()})]
        )
        labels.append(f"{len(rest)} other columns")
    base = float(explanation.base_value.loc[row])
    output = float(explanation.output.loc[row])
    xlabel = explanation.output_of(row)  # multiclass: this row's class, by name
    if units == "probability":
        if explanation.kind != "binary":
            raise ValueError(
                f"units='probability' needs a binary classifier's explanation, not "
                f"{explanation.kind}: one class's logit does not give its probability."
            )
        path = base + np.concatenate([[0.0], np.cumsum(contributions.to_numpy())])
        edges = 1 / (1 + np.exp(-path))
        contributions = pd.Series(np.diff(edges), index=contributions.index)
        base, output = float(edges[0]), float(edges[-1])
        xlabel = xlabel.replace("logit", "probability", 1)
    elif units != "logit":
        raise ValueError(f"units must be 'logit' or 'probability', got {units!r}.")
    starts = base + np.concatenate([[0.0], np.cumsum(contributions.to_numpy())[:-1]])
    fig = _figure(7, 0.45 * len(labels) + 1.5)
    ax = fig.add_subplot()
    y = np.arange(len(labels))[::-1]
    colors = [POSITIVE if v > 0 else NEGATIVE for v in contributions]
    ax.barh(y, contributions.to_numpy(), left=starts, color=colors)
    for yi, start, v in zip(y, starts, contributions, strict=True):
        ax.text(
            start + v, yi, f" {v:+.3g} ", va="center", ha="left" if v > 0 else "right"
        )
    ax.set_yticks(y, labels)
    ends = np.concatenate([starts, starts + contributions.to_numpy(), [base]])
    span = max(float(ends.max() - ends.min()), 1e-9)
    ax.set_xlim(ends.min() - 0.2 * span, ends.max() + 0.2 * span)
    ax.axvline(base, color="grey", lw=0.8, ls="--")
    ax.axvline(output, color="black", lw=0.8)
    ax.set_xlabel(xlabel)
    ax.set_title(f"Row {row}: base {base:.3g} -> output {output:.3g}")
    return fig


def importance(explanation: Explanation, max_columns: int = 20) -> Any:
    """Mean |attribution| per column, largest on top."""
    table = explanation.importance().head(max_columns)
    fig = _figure(7, 0.35 * len(table) + 1.2)
    ax = fig.add_subplot()
    ax.barh(table["column"][::-1], table["importance"][::-1], color=POSITIVE)
    ax.set_xlabel(f"mean |attribution| ({explanation.output_name})")
    ax.set_title(f"Global importance over {len(explanation.values)} rows")
    return fig


def tokens(explanation: Explanation, row: Any = None, column: str | None = None) -> Any:
    """Draw a text column's tokens, shaded red (raise the output) or blue (lower it)."""
    from matplotlib import colormaps
    from matplotlib.colors import TwoSlopeNorm

    row = explanation.data.index[0] if row is None else row
    column = column or _only(explanation.pipeline.schema_.text_cols, "text")
    table = explanation.tokens(row, column)
    words, values = _merge_word_pieces(table[~table["token"].isin(SPECIAL)])
    limit = max(float(np.abs(values).max()), 1e-12) if len(values) else 1.0
    norm, cmap = TwoSlopeNorm(0.0, -limit, limit), colormaps["coolwarm"]
    places, line, cursor = [], 0, 0
    for word in words:  # flow the words into lines of WIDTH monospace characters
        if cursor and cursor + len(word) > WIDTH:
            line, cursor = line + 1, 0
        places.append((cursor, line))
        cursor += len(word) + 1
    fig = _figure(9, 0.3 * (line + 1) + 0.8)
    ax = fig.add_subplot()
    ax.set_axis_off()
    ax.set_xlim(0, WIDTH)
    ax.set_ylim(line + 0.5, -0.5)
    for (x, y), word, v in zip(places, words, values, strict=True):
        ax.text(
            x,
            y,
            word,
            va="center",
            family="monospace",
            fontsize=10,
            bbox={"facecolor": cmap(norm(v)), "edgecolor": "none", "pad": 1.0},
        )
    title = textwrap.shorten(f"Row {row}, {column}", 80)
    ax.set_title(f"{title} (red raises, blue lowers {explanation.output_of(row)})")
    return fig


def regions(
    explanation: Explanation,
    row: Any = None,
    column: str | None = None,
    grid: int = 7,
) -> Any:
    """Draw an image column with its region attributions overlaid as a heat map."""
    import torch

    row = explanation.data.index[0] if row is None else row
    column = column or _only(explanation.pipeline.schema_.image_cols, "image")
    values = explanation.regions(row, column, grid=grid)
    # The image as the model sees it (resized, cropped), back from normalisation.
    pre = explanation.pipeline.preprocessors_["image"]
    pixels = pre.transform_frame(explanation.data.loc[[row]])[column]
    pixels = pixels[torch.tensor([0])]["pixels"][0].permute(1, 2, 0).numpy()
    image = np.clip(pixels * np.asarray(pre.std) + np.asarray(pre.mean), 0, 1)
    limit = max(float(np.abs(values).max()), 1e-12)
    fig = _figure(8, 4)
    ax_image, ax_map = fig.subplots(1, 2)
    height, width = image.shape[:2]
    for ax in (ax_image, ax_map):
        ax.imshow(image)
        ax.set_axis_off()
    shown = ax_map.imshow(
        values,
        cmap="coolwarm",
        vmin=-limit,
        vmax=limit,
        alpha=0.6,
        extent=(0, width, height, 0),
        interpolation="nearest",
    )
    fig.colorbar(shown, ax=ax_map, label=explanation.output_of(row))
    ax_image.set_title(f"Row {row}, {column}")
    ax_map.set_title("Region attributions")
    return fig


def _label(explanation: Explanation, row: Any, column: str) -> str:
    if column not in explanation.data.columns:
        return column
    value = explanation.data.loc[row, column]
    shown = textwrap.shorten(str(value), 30) if isinstance(value, str) else value
    if not isinstance(shown, str | int | float | np.number):
        return column
    return f"{column} = {shown}"


def _merge_word_pieces(table: pd.DataFrame) -> tuple[list[str], np.ndarray]:
    """Join WordPiece continuations (``##ing``) to their word, summing attributions."""
    words: list[str] = []
    values: list[float] = []
    for token, v in zip(table["token"], table["attribution"], strict=True):
        if token.startswith("##") and words:
            words[-1] += token[2:]
            values[-1] += v
        else:
            words.append(token)
            values.append(v)
    return words, np.asarray(values)


def _only(columns: Sequence[str], kind: str) -> str:
    if len(columns) != 1:
        raise ValueError(f"Pass column=: the model has {len(columns)} {kind} columns.")
    return columns[0]
