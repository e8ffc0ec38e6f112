"""FeaturePipeline: roles -> preprocessors -> inputs -> the network they feed."""

import numpy as np
import pytest
import torch

from widemm.pipeline import FeaturePipeline, network
from widemm.pipeline.network import tab_model_name


def test_fit_transform_and_build_a_network_that_takes_the_inputs(adult_xy):
    X, _ = adult_xy
    pipeline = FeaturePipeline(tab_model="mlp").fit(X.iloc[:500])
    assert set(pipeline.preprocessors_) == {"wide", "tab"}
    assert pipeline.n_rows_ == 500
    assert pipeline.projection_dim_ is None
    model = pipeline.build_model({"y": 1}).eval()
    inputs = pipeline.inputs(X.iloc[500:520], model)
    with torch.no_grad():
        assert model(inputs).shape == (20, 1)
    summary = pipeline.summary_.set_index("column")
    assert summary.loc["age", "min"] == X["age"].iloc[:500].min()


@pytest.mark.default_tab_model
def test_auto_tab_model_is_decided_by_the_rows_fitted_on():
    low, high = network.TABM_ROWS  # the real rule: the marker restores it
    assert low > 0
    assert tab_model_name("auto", low - 1) == "mlp"
    assert tab_model_name("auto", low) == "tabm"
    assert tab_model_name("auto", high) == "mlp"
    assert tab_model_name("auto", low, trees=True) == "mlp"
    assert tab_model_name("ft_transformer", 10) == "ft_transformer"


def test_a_projection_sizes_every_modality_for_the_fusion(adult_xy):
    X, _ = adult_xy
    pipeline = FeaturePipeline(tab_model="mlp").fit(X.iloc[:300], projection_dim=16)
    model = pipeline.build_model({})
    assert set(model.projections) == {"tab"}
    assert model.projections["tab"].out_features == 16


def test_a_copy_shares_the_feature_cache_and_nothing_else(adult_xy):
    X, _ = adult_xy
    pipeline = FeaturePipeline(tab_model="mlp").fit(X.iloc[:300])
    copy = pipeline.copy()
    assert copy.feature_cache() is pipeline.feature_cache()
    assert copy.preprocessors_["tab"] is not pipeline.preprocessors_["tab"]
    copy.keep_background(X.iloc[:100], np.arange(100.0)[:, None])
    assert not hasattr(pipeline, "background_")
    assert len(copy.background_) == 50


def test_a_fit_on_no_usable_column_says_so():
    import pandas as pd

    with pytest.raises(ValueError, match="No usable column"):
        FeaturePipeline().fit(pd.DataFrame({"id": range(50), "c": 1}))


@pytest.mark.default_tab_model
def test_options_the_chosen_tabular_model_cannot_take_name_it(adult_xy):
    """``hidden_dims=()`` suits the MLP, not the TabM that "auto" picks here."""
    from widemm import WideDeepClassifier

    X, y = adult_xy
    model = WideDeepClassifier(trees=False, tab_params={"hidden_dims": ()})
    message = r"hidden_dims.*tab_model='tabm' \(tab_model='auto' chose it for 2500"
    with pytest.raises(ValueError, match=message):
        model.fit(X[:2500], y[:2500])
    with pytest.raises(ValueError, match="hiden_dims"):
        model.set_params(tab_params={"hiden_dims": (8,)}).fit(X[:2500], y[:2500])
