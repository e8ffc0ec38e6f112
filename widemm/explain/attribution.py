"""Column attributions of a WideDeep model, with Captum.

Both methods explain the model's output for a row against a background sample:
the base value is the mean output over the background, and a row's attributions
sum to its output minus the base value.

- ``"permutation"``: Shapley values of the game whose players are the columns
  (and the wide part): a coalition takes its players' inputs from the row and
  the others' from each background row, averaged over the background
  (interventional SHAP). Estimated by Captum's ``ShapleyValueSampling`` over
  random permutations. Model-agnostic; the sum is exact (every permutation
  telescopes), each value is a Monte-Carlo estimate whose error shrinks as
  1/sqrt(n_samples). Cost: n_samples * (n_players + 1) * n_background forward
  rows per explained row.
- ``"gradient"``: Integrated Gradients (Captum's ``LayerIntegratedGradients``)
  on the layers that hold each column's information (categorical embeddings,
  continuous inputs, each text or image embedding, the wide part's output),
  from each background row to the row, summed back to columns. The sum is exact
  up to the integral's quadrature error (``Explanation.max_error`` reports it);
  exact Shapley values for models additive in the columns. Cost: n_steps *
  n_background forward and backward rows per explained row.

Both run the model on as many rows at once as fit in ``MEMORY_BUDGET`` bytes of
activations, measured on the model and inputs at hand (:func:`rows_per_call`):
an image model at 224 px takes a few rows a call, a table thousands.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import Tensor, nn

from widemm.data import concat, n_rows, take
from widemm.explain.players import Players
from widemm.models.layers import ColumnAttributable
from widemm.models.widedeep import WideDeep

# Bytes of activations (and, for gradients, their gradients) one model call may
# hold. An image + text model at 224 px explained against 10 background rows
# stays under 2 GB of peak RSS (bench/explain.py).
MEMORY_BUDGET = 256 * 2**20


def rows_per_call(
    model: nn.Module,
    batch: Mapping[str, Any] | Tensor,
    backward: bool,
    budget: int,
    forward: Callable[[Any], Tensor] | None = None,
) -> int:
    """Return how many rows of ``batch`` one call may take within ``budget`` bytes.

    The call is ``forward(rows)`` (default: ``model(rows)``). Measured on a
    probe of 2 rows: the bytes of the inputs and of every output of ``model``'s
    leaf modules (what a forward pass holds at most; with ``backward`` the
    activations are kept and gradients of as many bytes flow back: twice).
    """
    n = len(batch) if isinstance(batch, Tensor) else n_rows(batch)
    probe = take(batch, torch.arange(min(2, max(1, n))))
    total = sum(t.numel() * t.element_size() for t in _tensors(probe))

    def count(module: nn.Module, inputs: Any, output: Any) -> None:
        nonlocal total
        total += sum(t.numel() * t.element_size() for t in _tensors(output))

    leaves = [m for m in model.modules() if not any(m.children())]
    handles = [m.register_forward_hook(count) for m in leaves]
    try:
        with torch.set_grad_enabled(backward):
            (forward or model)(probe)
    finally:
        for handle in handles:
            handle.remove()
    per_row = (2 if backward else 1) * total / min(2, max(1, n))
    return max(1, int(budget // max(per_row, 1)))


def outputs(model: nn.Module, batch: Mapping[str, Any], budget: int) -> Tensor:
    """Return the model's outputs on every row of ``batch``, within ``budget``."""
    size = rows_per_call(model, batch, backward=False, budget=budget)
    with torch.no_grad():
        return torch.cat([model(take(batch, s)) for s in _chunks(n_rows(batch), size)])


def _tensors(value: Any) -> list[Tensor]:
    if isinstance(value, Tensor):
        return [value]
    if isinstance(value, Mapping):
        value = list(value.values())
    if isinstance(value, list | tuple):
        return [t for v in value for t in _tensors(v)]
    return []


def attribute_permutation(
    model: nn.Module,
    players: Players,
    x: Mapping[str, Any],
    background: Mapping[str, Any],
    target: Tensor,
    n_samples: int = 16,
    budget: int = MEMORY_BUDGET,
) -> Tensor:
    """Shapley values (n_rows, n_players) by permutation sampling; see module doc."""
    from captum.attr import ShapleyValueSampling

    n_x, n_players = n_rows(x), len(players.names)
    n_bg = n_rows(background)
    chunk_rows = rows_per_call(model, background, backward=False, budget=budget)
    game = coalition_game(model, players, x, background, chunk_rows)
    ones = torch.ones(n_x, n_players)
    per_eval = max(1, min(n_players, chunk_rows // max(1, n_x * n_bg)))
    return ShapleyValueSampling(game).attribute(
        ones,
        baselines=0.0,
        target=target,
        additional_forward_args=(torch.arange(n_x),),
        feature_mask=torch.arange(n_players)[None],
        n_samples=n_samples,
        perturbations_per_eval=per_eval,
    )


def coalition_game(
    model: nn.Module,
    players: Players,
    x: Mapping[str, Any],
    background: Mapping[str, Any],
    chunk_rows: int = 65536,
) -> Callable[[Tensor, Tensor], Tensor]:
    """Return the coalition game of rows ``x`` against ``background``.

    ``game(z, rows)`` is the (R, n_outputs) mean output over the background of
    rows ``rows`` of ``x`` with the players where ``z`` (R, n_players) is 0 taken
    from the background row.
    """
    n_bg = n_rows(background)

    @torch.no_grad()
    def game(z: Tensor, rows: Tensor) -> Tensor:
        r = rows.repeat_interleave(n_bg)
        b = torch.arange(n_bg).repeat(len(rows))
        zz = z.repeat_interleave(n_bg, dim=0)
        out = torch.cat(
            [
                model(players.mix(take(x, r[s]), take(background, b[s]), zz[s]))
                for s in _chunks(len(r), chunk_rows)
            ]
        )
        return out.reshape(len(rows), n_bg, -1).mean(1)

    return game


def attribute_gradient(
    model: WideDeep,
    players: Players,
    x: Mapping[str, Any],
    background: Mapping[str, Any],
    target: Tensor,
    n_steps: int = 32,
    budget: int = MEMORY_BUDGET,
) -> Tensor:
    """Integrated Gradients summed per player (n_rows, n_players); see module doc."""
    from captum.attr import LayerIntegratedGradients

    layers, to_players = _gradient_layers(model, players)
    n_x, n_bg = n_rows(x), n_rows(background)
    table = concat(x, background)
    chunk_rows = rows_per_call(model, table, backward=True, budget=budget)

    def forward(rows: Tensor) -> Tensor:
        return model(take(table, rows))

    rows = torch.arange(n_x).repeat_interleave(n_bg)
    base = n_x + torch.arange(n_bg).repeat(n_x)
    with warnings.catch_warnings():  # "ensure no layer depends on another": none does
        warnings.simplefilter("ignore", UserWarning)
        ig = LayerIntegratedGradients(forward, layers)
    # Rows per attribute call: their n_steps interpolations each, in model calls
    # of at most chunk_rows rows (at least one row's: Captum's rule).
    per_step = max(1, chunk_rows // max(1, n_steps))
    totals = torch.zeros(n_x * n_bg, len(players.names))
    for s in _chunks(len(rows), per_step):
        attrs = ig.attribute(
            rows[s],
            baselines=base[s],
            target=target.repeat_interleave(n_bg)[s],
            n_steps=n_steps,
            internal_batch_size=max(len(rows[s]), min(chunk_rows, per_step * n_steps)),
        )
        for attr, assign in zip(attrs, to_players, strict=True):
            totals[s] += assign(attr.detach().float(), len(totals[s]))
    return totals.reshape(n_x, n_bg, -1).mean(1)


def _gradient_layers(
    model: WideDeep, players: Players
) -> tuple[list[nn.Module], list[Callable[[Tensor, int], Tensor]]]:
    """Layers to attribute to, and for each a map of its attributions to players."""
    n_players = len(players.names)
    layers: list[nn.Module] = []
    to_players: list[Callable[[Tensor, int], Tensor]] = []

    def add(module: nn.Module, player_of_column: Tensor, column: int | None) -> None:
        def assign(attr: Tensor, rows: int) -> Tensor:
            out = torch.zeros(rows, n_players)
            if column is None:  # dim 1 runs over the columns
                per_column = attr.reshape(*attr.shape[:2], -1).sum(-1)
                return out.index_add_(1, player_of_column, per_column)
            # An ensemble's (TabM's) k members of a row sit in k consecutive rows
            # after its fold: their attributions add up.
            per_row = attr.reshape(rows, -1).sum(1)
            out[:, int(player_of_column[column])] += per_row
            return out

        layers.append(module)
        to_players.append(assign)

    for slot, encoder in model.encoders.items():
        if slot != "tab":
            add(model.fusion.taps[slot], torch.tensor([players.slot_player(slot)]), 0)
            continue
        if not isinstance(encoder, ColumnAttributable):
            raise TypeError(
                f"method='gradient' needs the tabular model's per-column layers; "
                f"{type(encoder).__name__} has no attribution_layers(). Use "
                "method='permutation'."
            )
        for module, kind, column in encoder.attribution_layers():
            cols = players.leaves[("tab", kind)]
            assert isinstance(cols, Tensor)
            add(module, cols, column)
    for slot, part in (("wide", model.wide), ("trees", model.trees)):
        if part is not None:
            add(part, torch.tensor([players.slot_player(slot)]), 0)
    return layers, to_players


def _chunks(n: int, size: int) -> list[slice]:
    return [slice(i, min(i + size, n)) for i in range(0, n, size)]
