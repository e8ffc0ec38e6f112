"""Where and how code runs: the device, seeded randomness, progress reporting."""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import torch
from tqdm.auto import tqdm


def resolve_device(device: str) -> torch.device:
    """``"auto"`` -> CUDA when available, else CPU; anything else as given."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


@contextmanager
def seeded(seed: int | None) -> Iterator[None]:
    """Run a block with torch's RNG seeded, restoring the caller's RNG state after."""
    with torch.random.fork_rng(devices=[]):
        if seed is not None:
            torch.manual_seed(seed)
        yield


def progress(items: Iterable[Any], *, verbose: bool, **kwargs: Any) -> Any:
    """Wrap ``items`` in tqdm if asked for and stderr is a terminal."""
    show = verbose and sys.stderr.isatty()
    return tqdm(items, leave=False, **kwargs) if show else items
