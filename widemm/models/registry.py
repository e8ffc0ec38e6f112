"""Name -> class lookups shared by the model registries, and the fusions' registry."""

from __future__ import annotations

import difflib
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from widemm.models.attention import AttentionFusion, CrossAttentionFusion
from widemm.models.fusion import (
    ConcatFusion,
    FiLMFusion,
    Fusion,
    GatedFusion,
    SumFusion,
)

T = TypeVar("T")


def resolve(
    spec: str | Callable[..., T], registry: Mapping[str, Callable[..., T]], arg: str
) -> Callable[..., T]:
    """Return ``registry[spec]``, or ``spec`` itself when it is a callable."""
    if callable(spec):
        return spec
    if spec in registry:
        return registry[spec]
    close = difflib.get_close_matches(str(spec), list(registry), n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    raise ValueError(f"Unknown {arg} {spec!r}; choose one of {sorted(registry)}.{hint}")


FUSIONS: dict[str, Callable[..., Fusion]] = {
    "attention": AttentionFusion,
    "cross_attention": CrossAttentionFusion,
    "concat": ConcatFusion,
    "film": FiLMFusion,
    "gated": GatedFusion,
    "sum": SumFusion,
}


def make_fusion(
    spec: str | Callable[..., Fusion], input_dims: Mapping[str, int], **params: Any
) -> Fusion:
    """Build a fusion by name (see ``FUSIONS``) or from a callable."""
    return resolve(spec, FUSIONS, "fusion")(input_dims, **params)
