"""Building blocks shared by the model parts."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Protocol, runtime_checkable

import torch
from torch import Tensor, nn


class Encoder(nn.Module):
    """A deep part: maps its slot of the batch to (batch_size, output_dim)."""

    output_dim: int


@runtime_checkable
class Tokenized(Protocol):
    """An encoder that can also give a short sequence of vectors per row.

    Read by a fusion over tokens (``fusion="cross_attention"``): text segments,
    image feature-map cells. An encoder without ``tokens`` gives one token, its
    output.
    """

    def tokens(self, x: Any) -> tuple[Tensor, Tensor]:
        """Return (B, T, output_dim) token states and their (B, T) bool mask."""
        ...


# A layer whose output holds some input columns' information, for gradient
# explanations: (module, "cat" or "cont", column index or None). With an index,
# the output (B, ...) is that one column; with None, its dim 1 runs over all
# columns of the kind.
AttributionLayer = tuple[nn.Module, str, int | None]


@runtime_checkable
class ColumnAttributable(Protocol):
    """A tabular encoder whose layers hold each column's information apart."""

    def attribution_layers(self) -> list[AttributionLayer]:
        """Return (module, "cat" or "cont", column index or None) per layer."""
        ...


@runtime_checkable
class TokenAttributable(Protocol):
    """A text encoder with one vector per token at some layer."""

    def token_embeddings(self) -> nn.Module:
        """Return the layer whose output holds one vector per token."""
        ...


@runtime_checkable
class LRScaled(Protocol):
    """A module that trains at ``lr_scale`` times the Trainer's learning rate."""

    lr_scale: float


def param_groups(model: nn.Module, learning_rate: float) -> list[dict[str, Any]]:
    """Parameters grouped by learning rate.

    A module with an ``lr_scale`` attribute (``LRScaled``: a pretrained backbone,
    say) trains its parameters at ``learning_rate * lr_scale``; the rest at
    ``learning_rate``.
    Frozen parameters are included: they get no gradient, so no update, until a
    callback unfreezes them (see ``UnfreezeBackbones``).
    """
    scales: dict[int, float] = {}
    for module in model.modules():
        if isinstance(module, LRScaled):
            scale = float(module.lr_scale)
            scales.update((id(p), scale) for p in module.parameters())
    groups: dict[float, list[nn.Parameter]] = {}
    for p in model.parameters():
        groups.setdefault(scales.get(id(p), 1.0), []).append(p)
    return [{"params": ps, "lr": learning_rate * s} for s, ps in groups.items()]


@runtime_checkable
class Backbone(Protocol):
    """A pretrained part the Trainer can unfreeze and checkpoint activations of."""

    frozen: bool

    def unfreeze(self) -> None:
        """Make every parameter trainable."""
        ...

    def enable_activation_checkpointing(self) -> None:
        """Recompute the trainable blocks' activations in the backward pass."""
        ...


class BackboneEncoder(Encoder):
    """An encoder around a pretrained ``backbone``: freezing, unfreezing, own LR.

    Subclasses build ``self.backbone`` and call :meth:`set_trainable`. A fully
    frozen backbone stays in eval mode while the rest of the model trains (no
    dropout, fixed batch-norm statistics), so its outputs can be cached.
    """

    backbone: nn.Module

    def set_trainable(
        self, freeze: bool, blocks: Iterable[nn.Module], unfreeze: int, lr_scale: float
    ) -> None:
        """Freeze the backbone but for its last ``unfreeze`` blocks (when ``freeze``).

        ``blocks`` are the backbone's stages or layers, input to output.
        ``lr_scale`` multiplies the Trainer's learning rate for these parameters.
        """
        self.blocks, self.lr_scale = list(blocks), lr_scale
        unfrozen = self.blocks[len(self.blocks) - unfreeze :] if unfreeze else []
        self.backbone.requires_grad_(not freeze)
        for block in unfrozen if freeze else ():
            block.requires_grad_(True)
        self.frozen = not any(p.requires_grad for p in self.parameters())

    def unfreeze(self) -> None:
        """Make every parameter trainable (see ``UnfreezeBackbones``)."""
        self.requires_grad_(True)
        self.frozen = False

    def enable_activation_checkpointing(self) -> None:
        """Recompute the trainable blocks' activations in the backward pass."""
        from torch.utils.checkpoint import checkpoint

        for block in self.blocks:
            if "forward" in vars(block) or not any(
                p.requires_grad for p in block.parameters()
            ):
                continue  # already wrapped, or frozen: nothing to save
            inner = block.forward

            def forward(*args: Any, _inner: Any = inner, **kwargs: Any) -> Any:
                if torch.is_grad_enabled():
                    return checkpoint(_inner, *args, use_reentrant=False, **kwargs)
                return _inner(*args, **kwargs)

            block.forward = forward

    def train(self, mode: bool = True) -> BackboneEncoder:
        super().train(mode)
        if self.frozen:
            self.backbone.eval()  # a frozen backbone never runs in train mode
        return self


class MLP(nn.Sequential):
    """Linear -> ReLU -> Dropout for each hidden size; identity when there are none.

    Parameters
    ----------
    in_dim : int
        Input size.
    hidden_dims : sequence of int
        Output size of each block; the last one is ``output_dim``.
    dropout : float
        Dropout after each activation.
    """

    def __init__(self, in_dim: int, hidden_dims: Sequence[int], dropout: float = 0.0):
        layers: list[nn.Module] = []
        for d_in, d_out in zip([in_dim, *hidden_dims], hidden_dims, strict=False):
            layers += [nn.Linear(d_in, d_out), nn.ReLU(), nn.Dropout(dropout)]
        super().__init__(*layers)
        self.output_dim = hidden_dims[-1] if hidden_dims else in_dim

    def forward(self, x: Tensor) -> Tensor:
        return super().forward(x)


class FastDropout(nn.Dropout):
    """``nn.Dropout`` whose CPU masks come from 16-bit slices of 64-bit random draws.

    torch's CPU dropout draws one Bernoulli sample per element: on movies, TabM's
    dropout took 5.1 s of a 21 s fit. Cutting each 64-bit draw into four 16-bit
    numbers and keeping an element where its number clears ``p``'s threshold is
    ~3x faster (forward at 4096 x 512: 4.2 ms against 14 ms) and still draws from
    torch's generator (``torch.manual_seed`` repeats it). The drop rate is ``p``
    rounded to 1/65,536; kept values are scaled to keep the mean. Elsewhere than
    on the CPU, torch's fused kernel.
    """

    def forward(self, x: Tensor) -> Tensor:
        if not self.training or x.device.type != "cpu" or not 0 < self.p < 1:
            return super().forward(x)
        cut = round(self.p * 65536)
        draws = torch.randint(-(2**63), 2**63 - 1, (-(-x.numel() // 4),))
        numbers = draws.view(torch.int16)[: x.numel()].view(x.shape)
        keep = numbers >= cut - 32768  # int16 runs from -32,768
        scale = 65536 / (65536 - cut)
        return x.mul_(keep).mul_(scale) if self.inplace else x * keep * scale


def fast_dropouts(module: nn.Module) -> None:
    """Make every ``nn.Dropout`` in ``module`` a :class:`FastDropout` (same rate)."""
    for child in list(module.modules()):
        for name, sub in list(child.named_children()):
            if type(sub) is nn.Dropout:
                setattr(child, name, FastDropout(sub.p, sub.inplace))
