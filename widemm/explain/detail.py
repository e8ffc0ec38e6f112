"""Drill-down: attributions to the tokens of a text and the regions of an image.

For one row, the model's output is seen as a function of one text or image
column's raw input (token ids, pixels), every other input held at the row's
values. Tokens are explained against the same text with every token replaced by
the padding token, image regions against the image filled with the mean colour
(0 after normalisation). Methods as for columns: ``"gradient"`` (Integrated
Gradients on the token embeddings or the pixels) or ``"permutation"`` (Shapley
values with tokens or grid cells as players).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import Tensor, nn

from widemm.data import take
from widemm.explain.attribution import MEMORY_BUDGET, rows_per_call
from widemm.models import WideDeep
from widemm.models.layers import TokenAttributable
from widemm.pipeline import FeaturePipeline


def _slot_of(pipeline: FeaturePipeline, column: str, kind: str) -> str:
    schema = pipeline.schema_
    slots = schema.text_slots if kind == "text" else schema.image_slots
    for slot, col in slots.items():
        if col == column:
            return slot
    raise ValueError(
        f"Column {column!r} is not a {kind} column; {kind} columns: "
        f"{list(slots.values())}."
    )


def _per_call(model: nn.Module, forward: Any, x: Tensor, backward: bool) -> int:
    """Rows of ``x`` one ``forward`` call may take in the explanations' budget."""
    return rows_per_call(model, x, backward, MEMORY_BUDGET, forward)


def _forward(model: nn.Module, row: dict[str, Any], slot: str, make: Any) -> Any:
    """Model output with ``slot`` built by ``make(x)`` and the rest from ``row``."""

    def forward(x: Tensor) -> Tensor:
        batch = take(row, torch.zeros(len(x), dtype=torch.long))
        batch[slot] = make(x)
        return model(batch)

    return forward


def token_attributions(
    model: WideDeep,
    pipeline: FeaturePipeline,
    frame: pd.DataFrame,
    row: dict[str, Any],
    column: str,
    target: int,
    method: str,
    n_steps: int = 32,
    n_samples: int = 8,
) -> pd.DataFrame:
    """Attribution of each token of ``column`` in the one-row ``frame``."""
    from tokenizers import Tokenizer

    slot = _slot_of(pipeline, column, "text")
    pre = pipeline.preprocessors_["text"]
    tokens = pre.transform_frame(frame)[column]
    length = max(int(tokens.attention_mask[0].sum()), 1)
    ids = torch.from_numpy(tokens.input_ids[:, :length])
    mask = torch.from_numpy(tokens.attention_mask[:, :length])
    present = torch.from_numpy(tokens.present)
    encoder = model.encoders[slot]
    if not isinstance(encoder, TokenAttributable):
        raise TypeError(
            f"Column {column!r}'s encoder {type(encoder).__name__} has no "
            "token_embeddings(): its tokens cannot be attributed."
        )
    forward = _forward(
        model,
        row,
        slot,
        lambda x: {
            "input_ids": x,
            "attention_mask": mask.expand(len(x), -1),
            "present": present.expand(len(x)),
        },
    )
    baseline = torch.full_like(ids, pre.pad_id_)
    if method == "gradient":
        from captum.attr import LayerIntegratedGradients

        attr = LayerIntegratedGradients(forward, encoder.token_embeddings()).attribute(
            ids,
            baselines=baseline,
            target=target,
            n_steps=n_steps,
            internal_batch_size=_per_call(model, forward, ids, backward=True),
        )
        values = attr.sum(-1)[0]
    else:
        from captum.attr import ShapleyValueSampling

        values = ShapleyValueSampling(forward).attribute(
            ids,
            baselines=baseline,
            target=target,
            feature_mask=torch.arange(length)[None],
            n_samples=n_samples,
            perturbations_per_eval=min(
                length, _per_call(model, forward, ids, backward=False)
            ),
        )[0]
    tok = Tokenizer.from_str(pre.tokenizer_json_)
    return pd.DataFrame(
        {
            "token": [tok.id_to_token(int(i)) for i in ids[0]],
            "attribution": values.detach().double().numpy(),
        }
    )


def region_attributions(
    model: WideDeep,
    pipeline: FeaturePipeline,
    frame: pd.DataFrame,
    row: dict[str, Any],
    column: str,
    target: int,
    method: str,
    grid: int = 7,
    n_steps: int = 32,
    n_samples: int = 4,
) -> np.ndarray:
    """(grid, grid) attributions of the cells of the image in ``column``."""
    slot = _slot_of(pipeline, column, "image")
    image = pipeline.preprocessors_["image"].transform_frame(frame)[column]
    inputs = image[torch.tensor([0])]
    pixels, present = inputs["pixels"], inputs["present"]
    forward = _forward(
        model,
        row,
        slot,
        lambda x: {"pixels": x, "present": present.expand(len(x))},
    )
    size = pixels.shape[-1]
    cells = (torch.arange(size) * grid // size).to(torch.long)
    cell_of_pixel = (cells[:, None] * grid + cells[None, :])[None, None]
    if method == "gradient":
        from captum.attr import IntegratedGradients

        attr = IntegratedGradients(forward).attribute(
            pixels,
            baselines=0.0,
            target=target,
            n_steps=n_steps,
            internal_batch_size=_per_call(model, forward, pixels, backward=True),
        )
        per_pixel = attr.sum(1).flatten()
        values = torch.zeros(grid * grid).index_add_(
            0, cell_of_pixel.flatten(), per_pixel.float()
        )
    else:
        from captum.attr import ShapleyValueSampling

        attr = ShapleyValueSampling(forward).attribute(
            pixels,
            baselines=0.0,
            target=target,
            feature_mask=cell_of_pixel,
            n_samples=n_samples,
            perturbations_per_eval=min(
                grid, _per_call(model, forward, pixels, backward=False)
            ),
        )
        first = torch.zeros(grid * grid, dtype=torch.long).scatter_(
            0, cell_of_pixel.flatten(), torch.arange(size * size)
        )
        values = attr[0, 0].flatten()[first]
    return values.detach().double().numpy().reshape(grid, grid)
