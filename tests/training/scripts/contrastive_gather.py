"""The contrastive loss under torchrun: each rank holds half of a batch.

Writes the mean loss over ranks and each row's gradient (rank order) to OUT,
or, run alone, the whole batch's loss and gradients.
"""

import os
import sys

import torch
import torch.distributed as dist

from widemm.training.contrastive import ContrastiveLoss

out = sys.argv[1]
g = torch.Generator().manual_seed(0)
a_all, b_all = torch.randn(8, 4, generator=g), torch.randn(8, 4, generator=g)
world = int(os.environ.get("WORLD_SIZE", 1))
if world > 1:
    dist.init_process_group("gloo")
rank = dist.get_rank() if world > 1 else 0
rows = slice(rank * 8 // world, (rank + 1) * 8 // world)
a = a_all[rows].clone().requires_grad_(True)
b = b_all[rows].clone().requires_grad_(True)
loss = ContrastiveLoss().pair(a, b) / world  # the ranks' mean
loss.backward()
if world > 1:
    total = loss.detach().clone()
    dist.all_reduce(total)
    grads = [torch.zeros_like(a) for _ in range(world)]
    dist.all_gather(grads, a.grad)
    if rank == 0:
        torch.save({"loss": total, "grad_a": torch.cat(grads)}, out)
    dist.destroy_process_group()
else:
    torch.save({"loss": loss.detach(), "grad_a": a.grad}, out)
