"""Attributions per DataFrame column: :func:`explain`."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import torch

from widemm.data import FrameDataset
from widemm.execution import seeded
from widemm.explain.attribution import (
    MEMORY_BUDGET,
    attribute_gradient,
    attribute_permutation,
    outputs,
)
from widemm.explain.explanation import Explanation, Method, check_method
from widemm.explain.players import TREES, WIDE, Players
from widemm.models import WideDeep
from widemm.pipeline import FeaturePipeline
from widemm.preprocessing.arrays import flatten, tab_arrays
from widemm.preprocessing.wide import CROSS_SEP
from widemm.targets import Block


def explain(
    model: WideDeep,
    pipeline: FeaturePipeline,
    X: pd.DataFrame,
    background: pd.DataFrame | None = None,
    method: Method = "gradient",
    *,
    output: Block,
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
    output : Block
        The kind of target and what the outputs mean (class labels, target units).
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
    method = check_method(method)
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
    out = outputs(model, x, MEMORY_BUDGET).double()
    base = outputs(model, bg, MEMORY_BUDGET).double().mean(0)
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
    shares = {}
    for player, shares_of in ((WIDE, _wide_shares), (TREES, _tree_shares)):
        if player in table:
            frames = (X, background)
            shares[player] = shares_of(model, pipeline, x, bg, target, frames) * scale
            table = _fold(table, shares[player], pipeline, player)
    return Explanation(
        values=table,
        wide_values=shares.get(WIDE),
        tree_values=shares.get(TREES),
        base_value=pd.Series(base[target].numpy() * scale + shift, index=X.index),
        output=pd.Series(out[rows, target].numpy() * scale + shift, index=X.index),
        method=method,
        output_name=_output_name(output, local),
        kind=output.kind,
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
    frames: tuple[pd.DataFrame, pd.DataFrame],
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


def _tree_shares(
    model: WideDeep,
    pipeline: FeaturePipeline,
    x: dict[str, Any],
    background: dict[str, Any],
    target: torch.Tensor,
    frames: tuple[pd.DataFrame, pd.DataFrame],
) -> pd.DataFrame:
    """Split the trees' attribution among the columns they read, by TreeSHAP.

    The trees add ``scale * score`` to the logits. A column's share for a row is
    its TreeSHAP value (LightGBM's ``pred_contrib``) minus its mean over the
    background, times the scale: the shares add up to the trees' part of
    ``output - base`` exactly. ``frames``: the explained and background rows,
    whose text columns the trees' linear text models read.
    """
    assert model.trees is not None
    trees = pipeline.preprocessors_["trees"]
    tab = pipeline.preprocessors_.get("tab")  # None: the trees read text alone
    cat, cont = ([], []) if tab is None else tab.feature_columns()
    texts = list(trees.text_cols)
    scale = model.trees.scale.detach().double().numpy()
    rows, base = (
        tab_arrays(flatten(batch), len(frame))
        for batch, frame in zip((x, background), frames, strict=True)
    )
    shares = np.zeros((len(target), len(cat) + len(cont) + len(texts)))
    for t in target.unique().tolist():
        at = (target == t).numpy()
        mean = trees.contributions(*base, t, frames[1]).mean(0)
        contributions = trees.contributions(rows[0][at], rows[1][at], t, frames[0][at])
        shares[at] = (contributions - mean) * scale[t]
    table = pd.DataFrame(shares.T, index=[*cat, *cont, *texts])  # by column
    return table.groupby(level=0, sort=False).sum().T


def _fold(
    table: pd.DataFrame, shares: pd.DataFrame, pipeline: FeaturePipeline, player: str
) -> Any:
    """Move a part's value (``"wide"``, ``"trees"``) into the columns it reads.

    A cross's share is split evenly among its columns; what belongs to no
    explained column stays under the part (dropped when nothing is left).
    """
    table = table.copy()
    shares = shares.set_axis(table.index)
    crosses = {CROSS_SEP.join(map(str, c)): c for c in pipeline.schema_.crossed_cols}
    for name in shares.columns:
        columns = crosses.get(name, (name,))
        for column in columns:
            if column in table:
                part = shares[name] / len(columns)
                table[column] += part
                table[player] -= part
    if (table[player].abs() < 1e-9 + 1e-6 * table.abs().max().max()).all():
        table = table.drop(columns=player)
    return table


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


def _output_name(output: Block, target: torch.Tensor) -> str:
    of = "" if output.name == "y" else f" ({output.name})"
    if output.classes is None:
        return "value" + of
    if output.kind == "binary":
        return f"logit of {output.classes[1]}{of}"
    classes = output.classes[target.unique().numpy()]
    one = len(classes) == 1
    what = "label" if output.kind == "multilabel" else "class"
    return (f"logit of {classes[0]}" if one else f"logit of each row's {what}") + of
