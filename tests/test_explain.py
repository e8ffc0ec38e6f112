import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest
import torch
from scipy.stats import spearmanr

from tests.conftest import DATA
from widemm import WideDeepClassifier, WideDeepRegressor

METHODS = ["gradient", "permutation"]


@pytest.fixture(scope="module")
def adult_model(adult):
    X, y = adult.drop(columns="income"), adult["income"]
    model = WideDeepClassifier(max_epochs=3, random_state=0).fit(X[:2500], y[:2500])
    return model, X[2500:2560], X[:200]


@pytest.fixture(scope="module")
def adult_explanations(adult_model):
    model, X, background = adult_model
    return {m: model.explain(X, m, background) for m in METHODS}


@pytest.mark.parametrize(
    ("method", "tolerance"), [("gradient", 0.05), ("permutation", 1e-4)]
)
def test_attributions_sum_to_output_minus_base(
    adult_model, adult_explanations, method, tolerance
):
    model, X, _ = adult_model
    e = adult_explanations[method]
    assert list(e.values.columns) == list(X.columns)  # the wide share folded in
    assert e.values.index.equals(X.index)
    logit = np.log(model.predict_proba(X)[:, 1] / model.predict_proba(X)[:, 0])
    np.testing.assert_allclose(e.output, logit, atol=1e-4)
    assert e.max_error < tolerance
    assert e.output_name == "logit of >50K"
    assert e.values.abs().sum(axis=1).min() > 0


def test_methods_agree_on_adult_ranking(adult_explanations):
    grad = adult_explanations["gradient"].importance().set_index("column")
    perm = adult_explanations["permutation"].importance().set_index("column")
    rho = spearmanr(grad["importance"], perm.loc[grad.index, "importance"]).statistic
    assert rho > 0.9
    assert set(grad.index[:5]) & set(perm.index[:5]) >= set(grad.index[:3])


@pytest.mark.parametrize("method", METHODS)
def test_only_the_columns_the_label_depends_on_matter(method):
    rng = np.random.default_rng(0)
    n = 1500
    X = pd.DataFrame(
        {
            "noise_1": rng.normal(size=n),
            "a": rng.normal(size=n),
            "noise_2": rng.choice(["p", "q", "r"], n),
            "b": rng.choice(["x", "y", "z"], n),
            "noise_3": rng.normal(size=n),
        }
    )
    y = (X["a"] + 2 * (X["b"] == "x") > 0.5).astype(int)
    model = WideDeepClassifier(max_epochs=8, random_state=0).fit(X, y)
    top = model.explain(X[:50], method).importance()["column"]
    assert set(top[:2]) == {"a", "b"}


def test_the_wide_share_is_split_exactly_among_its_inputs(adult_model):
    model, X, background = adult_model
    e = model.explain(X[:10], background=background[:20])
    wide, pipeline = model.model_.wide, model.pipeline_
    with torch.no_grad():
        rows = wide(pipeline.inputs(X[:10], model.model_)["wide"])[:, 0].double()
        base = wide(pipeline.inputs(background[:20], model.model_)["wide"])[:, 0]
    expected = rows - base.double().mean()  # (float32 sums inside the model)
    np.testing.assert_allclose(e.wide_values.sum(1), expected, atol=1e-6)
    assert list(e.wide_values.columns) == list(pipeline.preprocessors_["wide"].vocab_)
    assert e.max_error < 0.05  # folding keeps the sum


@pytest.mark.parametrize("method", METHODS)
def test_linear_model_gets_the_closed_form_shapley_values(method):
    df = pd.read_parquet(DATA / "california_housing.parquet").sample(
        800, random_state=0
    )
    y = df.pop("MedHouseVal")
    linear = WideDeepRegressor(
        wide=False,
        trees=False,
        tab_params={"hidden_dims": (), "cont_embed_dim": 0},
        fusion_params={"hidden_dims": ()},
        max_epochs=3,
        random_state=0,
    ).fit(df, y)
    X, background = df[:30], df[100:120]
    e = linear.explain(X, method, background)
    tab = linear.pipeline_.preprocessors_["tab"]
    weights = linear.model_.heads["y"].weight[0].detach().double().numpy()
    centred = tab.transform(X) - tab.transform(background).mean(axis=0)
    expected = centred * weights * linear.targets_[0].scale_[0]
    np.testing.assert_allclose(e.values[list(df.columns)], expected, atol=1e-4)
    np.testing.assert_allclose(e.output, linear.predict(X), rtol=1e-5)


@pytest.fixture(scope="module")
def reviews_model():
    df = pd.read_parquet(DATA / "womens_clothing_reviews.parquet").sample(
        4000, random_state=0
    )
    y = df.pop("Recommended IND")
    X = df.drop(columns=["Rating", "Clothing ID"])
    model = WideDeepClassifier(max_epochs=4, random_state=0).fit(X[:3500], y[:3500])
    return model, X[3500:]


def test_token_attributions_point_at_sentiment_words(reviews_model):
    model, X = reviews_model
    rows = X[X["Review Text"].notna()][:40]
    e = model.explain(rows, background=X[-100:])
    tokens = pd.concat([e.tokens(r, "Review Text") for r in rows.index])
    assert "[PAD]" not in set(tokens["token"])  # real tokens only
    by_word = tokens.groupby("token")["attribution"].mean()
    positive = by_word.reindex(["love", "perfect", "great", "comfortable"]).dropna()
    negative = by_word.reindex(["disappointed", "unfortunately", "returned"]).dropna()
    assert len(positive) >= 2
    assert len(negative) >= 1
    assert positive.mean() > 0 > negative.mean()


def test_token_methods_agree(reviews_model):
    model, X = reviews_model
    rows = X[X["Review Text"].str.len() > 200][:3]
    e = model.explain(rows, background=X[-100:])
    for r in rows.index:
        grad = e.tokens(r, "Review Text")
        perm = e.tokens(r, "Review Text", method="permutation")
        assert (grad["token"] == perm["token"]).all()
        rho = spearmanr(grad["attribution"], perm["attribution"]).statistic
        assert rho > 0.5
        # Both split the same total: f(text) - f(all tokens padding).
        total = perm["attribution"].sum()
        assert grad["attribution"].sum() == pytest.approx(total, rel=0.05, abs=0.01)


def test_images_get_region_maps(mobilenet_weights):
    df = pd.read_parquet(DATA / "emoji" / "emoji.parquet").sample(300, random_state=0)
    y = df["category"].eq("Flags")
    noise = np.random.default_rng(0).normal(size=len(df))  # a column of no signal
    X = df[["image_path"]].assign(noise=noise)
    model = WideDeepClassifier(
        image_root=str(DATA / "emoji"), image_size=32, max_epochs=3, random_state=0
    ).fit(X, y)
    e = model.explain(X[:12], n_background=12)
    assert e.max_error < 0.05
    assert e.importance()["column"].iloc[0] == "image_path"
    grad = e.regions(X.index[0], "image_path", grid=4)
    perm = e.regions(X.index[0], "image_path", grid=4, method="permutation")
    assert grad.shape == perm.shape == (4, 4)
    # Both split the same total: f(image) - f(mean-colour image).
    assert grad.sum() == pytest.approx(perm.sum(), rel=0.1, abs=0.05)
    fig = e.plot("regions", grid=4)
    assert len(fig.axes) == 3  # image, overlay, colour bar


def test_plots_return_figures(adult_explanations):
    e = adult_explanations["gradient"]
    fig = e.plot("waterfall", row=e.values.index[1], max_columns=5)
    assert len(fig.axes[0].patches) == 6  # 5 columns + the rest
    prob = e.plot("waterfall", row=e.values.index[1], units="probability")
    assert prob.axes[0].get_xlabel() == "probability of >50K"
    lo, hi = prob.axes[0].get_xlim()
    assert -0.5 < lo < hi < 1.5  # probabilities, not logits
    fig = e.plot("importance", max_columns=8)
    assert len(fig.axes[0].patches) == 8
    with pytest.raises(ValueError, match="kind must be one of"):
        e.plot("pie")


def test_token_plot(reviews_model):
    model, X = reviews_model
    rows = X[X["Review Text"].notna()][:10]
    e = model.explain(rows)
    fig = e.plot("tokens", column="Review Text")
    n_tokens = len(e.tokens(rows.index[0], "Review Text"))
    assert 0 < len(fig.axes[0].texts) <= n_tokens


def test_a_few_rows_are_explained_against_the_background_kept_at_fit(adult_model):
    model, X, _ = adult_model
    few = model.explain(X[:3])  # 50 training rows kept at fit: no background needed
    again = model.explain(X[:3], random_state=1)
    np.testing.assert_allclose(few.base_value, again.base_value)  # it does not wander
    assert few.max_error < 0.05
    assert len(model.pipeline_.background_) == 50
    long = few.to_frame()
    assert len(long) == 3 * few.values.shape[1]
    assert {"row", "column", "value", "attribution", "base_value"} <= set(long)
    assert "top columns" in repr(few)
    assert "<table" in few._repr_html_()


def test_bad_requests_say_what_is_wrong(adult_model, adult_explanations):
    model, X, background = adult_model
    with pytest.raises(ValueError, match="method must be one of"):
        model.explain(X, method="lime")
    with pytest.raises(ValueError, match="age"):
        model.explain(X, background=background.drop(columns="age"))
    e = adult_explanations["gradient"]
    with pytest.raises(ValueError, match="'education' is not a text column"):
        e.tokens(X.index[0], "education")
    with pytest.raises(KeyError, match="not among the explained rows"):
        e.tokens(-1, "education")


def test_multiclass_explains_the_predicted_class(adult):
    X, y = adult.drop(columns="income")[:600], adult["relationship"][:600]
    X = X.drop(columns=["relationship", "marital-status"])
    model = WideDeepClassifier(max_epochs=2, random_state=0).fit(X, y)
    e = model.explain(X[:20])
    assert e.max_error < 0.05
    predicted = set(model.predict(X[:20]))
    expected = (
        f"logit of {predicted.pop()}"
        if len(predicted) == 1
        else "logit of each row's class"
    )
    assert e.output_name == expected
    with pytest.raises(ValueError, match="class_index must be in"):
        model.explain(X[:20], class_index=len(model.classes_))
    with pytest.raises(ValueError, match="needs a binary classifier"):
        e.plot("waterfall", units="probability")
    first = X.index[0]
    named = f"logit of {model.predict(X.loc[[first]])[0]}"
    assert e.output_of(first) == named  # the row's class, by name
    assert e.plot("waterfall", row=first).axes[0].get_xlabel() == named
    fixed = model.explain(X[:20], class_index=0)
    assert fixed.output_name == f"logit of {model.classes_[0]}"


def test_a_loaded_model_explains_the_same(adult_model, adult_explanations, tmp_path):
    import widemm

    model, X, background = adult_model
    model.save(tmp_path / "m")
    again = widemm.load(tmp_path / "m").explain(X, "permutation", background)
    pd.testing.assert_frame_equal(
        again.values, adult_explanations["permutation"].values, atol=1e-5
    )


def test_tabm_with_text_explains_columns_and_tokens():
    """TabM's members are folded into rows after the fusion's taps: attributions
    of the other slots add up over the members."""
    df = pd.read_parquet(DATA / "womens_clothing_reviews.parquet").sample(
        1200, random_state=0
    )
    y = df.pop("Recommended IND")
    X = df.drop(columns=["Rating", "Clothing ID"])
    model = WideDeepClassifier(max_epochs=1, random_state=0, tab_model="tabm")
    model.fit(X[:1000], y[:1000])
    rows = X[1000:][X[1000:]["Review Text"].notna()][:5]
    for method, tolerance in (("gradient", 0.05), ("permutation", 1e-4)):
        e = model.explain(rows, method, background=X[-100:])
        assert e.max_error < tolerance
        assert (e.values["Review Text"].abs() > 0).all()
    tokens = e.tokens(rows.index[0], "Review Text")
    assert len(tokens) > 3
    assert tokens["attribution"].abs().sum() > 0


@pytest.mark.parametrize("method", METHODS)
def test_the_trees_share_is_lightgbms_treeshap_and_the_sum_holds(adult_xy, method):
    """The trees' part of an explanation is LightGBM's own TreeSHAP (its
    ``pred_contrib``) against the background, times the trees' learned scale."""
    X, y = adult_xy
    model = WideDeepClassifier(max_epochs=2, random_state=0).fit(X[:1500], y[:1500])
    trees = model.pipeline_.preprocessors_["trees"]
    rows, background = X[2000:2012], X[2500:2530]
    e = model.explain(rows, method, background)
    assert e.max_error < 0.05
    assert "trees" not in e.values  # folded into the columns it reads
    tab = model.pipeline_.preprocessors_["tab"]
    features = np.concatenate(
        [tab.transform(rows)[:, : tab.n_cat_], tab.transform(rows)[:, tab.n_cat_ :]], 1
    )
    base = tab.transform(background)
    own = [
        lgb.Booster(model_str=text).predict(features, pred_contrib=True)
        - lgb.Booster(model_str=text).predict(base, pred_contrib=True).mean(0)
        for text in trees.boosters_[0]
    ]
    treeshap = np.mean(own, axis=0)[:, :-1] * float(model.model_.trees.scale[0])
    cat, cont = tab.feature_columns()
    expected = pd.DataFrame(treeshap, columns=[*cat, *cont], index=rows.index)
    expected = expected.T.groupby(level=0).sum().T
    np.testing.assert_allclose(
        e.tree_values[expected.columns], expected, rtol=1e-6, atol=1e-9
    )
    total = e.tree_values.sum(axis=1)
    scale = float(model.model_.trees.scale[0])
    scores = trees.transform(features[:, : tab.n_cat_], features[:, tab.n_cat_ :])
    base_scores = trees.transform(base[:, : tab.n_cat_], base[:, tab.n_cat_ :])
    np.testing.assert_allclose(
        total, scale * (scores[:, 0] - base_scores[:, 0].mean()), rtol=1e-5, atol=1e-6
    )


@pytest.mark.parametrize("method", METHODS)
def test_a_small_tables_line_share_is_its_terms_against_the_background(method):
    from sklearn.datasets import load_breast_cancer

    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    model = WideDeepClassifier(max_epochs=2, random_state=0).fit(X[:250], y[:250])
    line = model.pipeline_.preprocessors_["trees"]
    assert not line.boost  # 250 rows: a line of the continuous inputs, no trees
    rows, background = X[300:310], X[350:400]
    e = model.explain(rows, method, background)
    assert e.max_error < 0.05
    tab = model.pipeline_.preprocessors_["tab"]
    ((coef, _),) = line.lines_[0]
    values = tab.transform(rows)[:, tab.n_cat_ :]
    base = tab.transform(background)[:, tab.n_cat_ :]
    terms = (values - base.mean(0)) * coef[0] * float(model.model_.trees.scale[0])
    _, cont = tab.feature_columns()
    expected = pd.DataFrame(terms, columns=cont, index=rows.index)
    expected = expected.T.groupby(level=0).sum().T
    np.testing.assert_allclose(
        e.tree_values[expected.columns], expected, rtol=1e-5, atol=1e-7
    )
