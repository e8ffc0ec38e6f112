"""Where and how code runs: the device, seeded randomness, progress reporting.

Progress reaches every user when ``verbose > 0``: tqdm bars on a terminal or in
a notebook (``tqdm.auto`` picks widgets there); otherwise (stderr redirected to a
log file, a scheduler's job log) one line per epoch and per long step, written
through the ``widemm`` logger, which prints to stderr unless the application has
configured logging itself. ``verbose=0`` prints nothing.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import torch
from tqdm.auto import tqdm

log = logging.getLogger("widemm")


def resolve_device(device: str) -> torch.device:
    """``"auto"`` -> CUDA when available, else CPU; anything else as given."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def native_bf16(device: torch.device) -> bool:
    """Tell whether ``device`` runs bfloat16 matrix products in hardware.

    CPUs with AVX512-BF16 or AMX, GPUs that support bf16: there bf16 is faster
    (measured on a 2-core AVX512-BF16 CPU: a frozen MiniLM with bf16 weights
    1.9-2x, MobileNetV2 under autocast 2.5x); elsewhere it is emulated, and
    slower.
    """
    if device.type == "cuda":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    if device.type == "cpu":
        checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
        return any(getattr(torch.cpu, name, lambda: False)() for name in checks)
    return False


@contextmanager
def seeded(seed: int | None) -> Iterator[None]:
    """Run a block with torch's RNG seeded, restoring the caller's RNG state after."""
    with torch.random.fork_rng(devices=[]):
        if seed is not None:
            torch.manual_seed(seed)
        yield


def interactive() -> bool:
    """Tell whether a person watches: stderr is a terminal, or a notebook runs us."""
    if sys.stderr.isatty():
        return True
    shell = sys.modules.get("IPython")
    ip = shell.get_ipython() if shell is not None else None
    return ip is not None and "IPKernelApp" in getattr(ip, "config", {})


def progress(items: Iterable[Any], *, verbose: bool, **kwargs: Any) -> Any:
    """Wrap ``items`` in a tqdm bar when asked for and a person watches."""
    show = verbose and interactive()
    return tqdm(items, leave=False, **kwargs) if show else items


class _Stderr(logging.Handler):
    """Write records to the current ``sys.stderr`` (which tests and notebooks swap)."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            sys.stderr.write(self.format(record) + "\n")
            sys.stderr.flush()
        except Exception:
            self.handleError(record)


def log_line(message: str, *args: Any, verbose: int | bool = 1) -> None:
    """Log one progress line (``widemm`` logger, INFO) when ``verbose``.

    With no logging configured, the line goes to stderr; an application that
    configures logging (handlers on the root or ``widemm`` logger) gets it there.
    """
    if not verbose:
        return
    if not log.hasHandlers():
        handler = _Stderr()
        handler.setFormatter(logging.Formatter("widemm: %(message)s"))
        log.addHandler(handler)
    if log.getEffectiveLevel() > logging.INFO:
        log.setLevel(logging.INFO)
    log.info(message, *args)
