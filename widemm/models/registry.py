"""Name -> class lookup shared by the model registries (tab models, fusions)."""

from __future__ import annotations

import difflib
from collections.abc import Callable, Mapping
from typing import TypeVar

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
