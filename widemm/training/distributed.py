"""Data-parallel training on PyTorch's own engine, switched on by ``torchrun``.

``torchrun --nproc_per_node=N script.py`` sets ``WORLD_SIZE``, ``RANK`` and
``LOCAL_RANK``; the Trainer then joins the process group (NCCL on CUDA, gloo on
the CPU), wraps the model in ``DistributedDataParallel`` (or, with
``strategy="fsdp"``, FSDP's ``fully_shard``), gives each rank its shard of every
global batch, averages the training loss over ranks and writes checkpoints on
rank 0 only. Without those variables nothing changes.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

Strategy = Literal["ddp", "fsdp"]


@dataclass(frozen=True)
class Distributed:
    """Where this process sits in the job: ``world_size`` ranks, this one ``rank``."""

    world_size: int = 1
    rank: int = 0
    local_rank: int = 0

    @classmethod
    def from_env(cls) -> Distributed:
        """Read torchrun's variables; a plain run is a world of one."""
        world = int(os.environ.get("WORLD_SIZE", "1"))
        if world == 1:
            return cls()
        return cls(world, int(os.environ["RANK"]), int(os.environ["LOCAL_RANK"]))

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Rank 0: the one that writes files."""
        return self.rank == 0

    def device(self, device: torch.device) -> torch.device:
        """Each rank's own GPU when training on CUDA."""
        if self.enabled and device.type == "cuda":
            return torch.device("cuda", self.local_rank)
        return device

    def setup(self, device: torch.device) -> None:
        """Join the process group (once per process; left when the process exits).

        A process that exits still in the group can abort as its threads are
        torn down ("terminate called without an active exception"): one run in
        three of the two-process pretraining test did, exit code -6.
        """
        import atexit

        import torch.distributed as dist

        if self.enabled and not dist.is_initialized():
            backend = "nccl" if device.type == "cuda" else "gloo"
            dist.init_process_group(backend, rank=self.rank, world_size=self.world_size)
            atexit.register(_leave)

    def wrap(self, model: nn.Module, strategy: Strategy) -> nn.Module:
        """Return the model as the ranks train it (itself when not distributed)."""
        if not self.enabled:
            return model
        if strategy == "fsdp":
            from torch.distributed.fsdp import fully_shard

            fully_shard(model)  # shards in place
            return model
        if strategy != "ddp":
            raise ValueError(f"strategy must be 'ddp' or 'fsdp', got {strategy!r}.")
        from torch.nn.parallel import DistributedDataParallel

        device = next(model.parameters()).device
        ids = [device.index] if device.type == "cuda" else None
        return DistributedDataParallel(model, device_ids=ids)

    def mean(self, total: torch.Tensor, count: float) -> float:
        """Sum ``total`` and ``count`` over the ranks; return their ratio."""
        if self.enabled:
            import torch.distributed as dist

            both = torch.tensor(
                [float(total), float(count)], dtype=torch.float64, device=total.device
            )
            dist.all_reduce(both)
            total, count = both[0], float(both[1])
        return float(total) / count

    def sum(self, count: float) -> float:
        """Sum a number over the ranks."""
        if not self.enabled:
            return count
        import torch.distributed as dist

        total = torch.tensor([count], dtype=torch.float64)
        dist.all_reduce(total)
        return float(total)

    def all_reduce_(self, tensor: torch.Tensor) -> None:
        """Sum ``tensor`` over the ranks, in place."""
        if self.enabled:
            import torch.distributed as dist

            dist.all_reduce(tensor)

    def barrier(self) -> None:
        if self.enabled:
            import torch.distributed as dist

            dist.barrier()


def _leave() -> None:
    """Leave the process group, if the process is still in it."""
    import torch.distributed as dist

    if dist.is_initialized():
        dist.destroy_process_group()
