"""Helpers of the training tests: a small net and data, a script run in processes."""

import os
import subprocess
import sys
from pathlib import Path

import torch
from torch import nn

from widemm.data import FrameDataset
from widemm.models.image import ImageEncoder
from widemm.training import Trainer

SCRIPT = Path(__file__).parent / "scripts" / "fit_adult.py"
ROOT = Path(__file__).resolve().parents[2]


def run(*args, torchrun=False, check=True):
    cmd = [sys.executable]
    if torchrun:
        cmd += ["-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        [*cmd, str(SCRIPT), *map(str, args)], capture_output=True, text=True, env=env
    )
    if check and done.returncode != 0:
        raise AssertionError(done.stderr[-3000:])
    return done


def assert_same_weights(a, b, atol=0.0):
    a, b = torch.load(a), torch.load(b)
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(a[k], b[k], atol=atol, rtol=0 if atol == 0 else 1e-4)


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(3, 16), nn.ReLU(), nn.Linear(16, 1))

    def forward(self, batch):
        return self.net(batch["x"])


def data(n=512, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 3, generator=g)
    return FrameDataset({"x": x}, (x @ torch.tensor([2.0, -1.0, 0.5]) > 0).float())


def train(config, callbacks=(), model=None, dataset=None):
    torch.manual_seed(0)
    model = model or Net()
    Trainer(config, callbacks).fit(model, dataset or data())
    return model


class Images(nn.Module):
    def __init__(self, **kwargs):
        super().__init__()
        self.encoder = ImageEncoder("resnet18", **kwargs)
        self.head = nn.Linear(self.encoder.output_dim, 1)

    def forward(self, batch):
        return self.head(self.encoder(batch))


def image_data(n=16):
    g = torch.Generator().manual_seed(0)
    return FrameDataset(
        {"pixels": torch.randn(n, 3, 32, 32, generator=g)},
        (torch.arange(n) % 2).float(),
    )


def seeded_images():
    torch.manual_seed(0)  # both models start from the same weights
    return Images()
