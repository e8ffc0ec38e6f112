"""End-to-end properties of the estimators on random small tables (Hypothesis)."""

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import widemm
from widemm import WideDeepClassifier, WideDeepRegressor

KINDS = ["float", "int", "cat", "bool", "text"]


@st.composite
def tables(draw):
    """A frame of mixed dtypes with missing values, random index labels, a target."""
    seed = draw(st.integers(0, 2**16))
    n = draw(st.integers(24, 60))
    kinds = draw(st.lists(st.sampled_from(KINDS), min_size=1, max_size=4))
    rng = np.random.default_rng(seed)
    columns = {}
    for j, kind in enumerate(kinds):
        if kind == "float":
            values = pd.Series(rng.normal(size=n) * 10.0 ** rng.integers(-3, 4))
        elif kind == "int":
            values = pd.Series(rng.integers(-5, 5, size=n))
        elif kind == "bool":
            values = pd.Series(rng.random(n) < 0.5)
        elif kind == "cat":
            values = pd.Series(rng.choice(["a", "b", "c", None], size=n), dtype=object)
        else:
            words = np.array(["red", "small", "good", "cheap", "fast", "old"])
            values = pd.Series([" ".join(rng.choice(words, 4)) for _ in range(n)])
        if kind in ("float", "text") and rng.random() < 0.5:
            values[rng.random(n) < 0.2] = None
        columns[j] = values
    frame = pd.DataFrame(columns)
    labels = rng.permutation(np.arange(1000, 1000 + 3 * n))[:n]
    index = pd.Index(labels if rng.random() < 0.5 else [f"r{i}" for i in labels])
    signal = rng.normal(size=n)
    return frame.set_axis(index), signal, seed


def small(cls):
    return cls(
        tab_params={"hidden_dims": (8,)},
        fusion_params={"hidden_dims": (8,)},
        max_epochs=2,
        random_state=0,
    )


@pytest.mark.parametrize("cls", [WideDeepClassifier, WideDeepRegressor])
@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(data=tables())
def test_random_tables_train_predict_and_round_trip(cls, data, tmp_path_factory):
    frame, signal, seed = data
    y = signal > np.median(signal) if cls is WideDeepClassifier else signal * 100
    y = pd.Series(y, index=frame.index)
    schema = widemm.infer_schema(frame)
    if not schema.deep_cols:  # every column unusable (one value, say): said clearly
        with pytest.raises(ValueError, match="No usable column"):
            small(cls).fit(frame, y)
        return
    model = small(cls).fit(frame, y)
    pred = model.predict(frame)
    assert len(pred) == len(frame)
    if cls is WideDeepRegressor:
        assert np.isfinite(pred).all()
    else:
        assert np.isfinite(model.predict_proba(frame)).all()
    # Only the names' type and the index changed: the same model, the same outputs.
    renamed = frame.set_axis([str(c) for c in frame.columns], axis=1)
    reindexed = renamed.reset_index(drop=True)
    other = small(cls).fit(reindexed, y.to_numpy())
    np.testing.assert_allclose(other.predict(renamed), pred, rtol=1e-5, atol=1e-6)
    folder = tmp_path_factory.mktemp(f"model{seed}")
    model.save(folder)
    np.testing.assert_array_equal(widemm.load(folder).predict(frame), pred)
