"""Women's clothing reviews (Recommended IND): text + tabular, widemm vs TF-IDF + LR.

    python bench/reviews.py              # every candidate, one JSON line each
    python bench/reviews.py --run NAME   # one candidate in this process

Candidates: frozen all-MiniLM-L6-v2 with the feature cache; the same model without
the cache and with it on one subsample (seconds per epoch after the first, to show
the cache's speed-up); MiniLM with its top 2 layers fine-tuned (on a subsample, to
stay within minutes on a CPU); the light bag-of-words model; and scikit-learn's
TF-IDF + LogisticRegression on the same split. ``minilm_encoding_bf16``: the
feature cache encoding 1,000 review texts (at most 128 tokens) with a frozen
MiniLM, in float32 and with its bf16 copy, alternating A B A B; rows/s of
each (the better of its two runs) and the smallest cosine between the two
embeddings of a row. ``minilm_encoding_bf16_128``: the same on 500 texts of
128 tokens each (two reviews joined, cut at 128).
"""

from __future__ import annotations

import statistics

from common import cli, emit, split, timed
from sklearn.metrics import accuracy_score, roc_auc_score

MINILM = "sentence-transformers/all-MiniLM-L6-v2"
TEXT = ["Title", "Review Text"]
TABULAR = [
    "Age",
    "Division Name",
    "Department Name",
    "Class Name",
    "Positive Feedback Count",
]
CANDIDATES = [
    "widemm_minilm_frozen_cached",
    "widemm_minilm_cache_speedup",
    "minilm_encoding_bf16",
    "minilm_encoding_bf16_128",
    "widemm_minilm_finetuned_top2",
    "widemm_bag",
    "sklearn_tfidf_logreg",
]
SUBSAMPLE = 2000  # training rows for the runs that re-run MiniLM every step


def data():
    X_train, X_test, y_train, y_test = split(
        "womens_clothing_reviews", "Recommended IND"
    )
    return X_train[TEXT + TABULAR], X_test[TEXT + TABULAR], y_train, y_test


def tfidf_logreg():
    from sklearn.compose import make_column_transformer
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer

    join = FunctionTransformer(lambda X: X.fillna("").agg(" ".join, axis=1))
    tfidf = make_pipeline(
        join, TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True)
    )
    features = make_column_transformer((tfidf, TEXT))
    return make_pipeline(features, LogisticRegression(C=4.0, max_iter=2000))


def widemm(name: str):
    from widemm import WideDeepClassifier

    if name == "widemm_bag":
        return WideDeepClassifier(random_state=0)
    if name == "widemm_minilm_finetuned_top2":
        return WideDeepClassifier(
            text_model=MINILM,
            text_params={"freeze": True, "unfreeze_top_n": 2},
            text_max_length=128,
            max_epochs=2,
            batch_size=32,
            random_state=0,
        )
    return WideDeepClassifier(text_model=MINILM, random_state=0)


def epoch_seconds(model) -> float:
    """Median seconds of the epochs after the first."""
    seconds = model.history_["seconds"].tolist()
    return statistics.median(seconds[1:] or seconds)


def run(name: str) -> None:
    X_train, X_test, y_train, y_test = data()
    if name == "widemm_minilm_cache_speedup":
        return speedup(X_train.head(SUBSAMPLE), y_train.head(SUBSAMPLE))
    if name == "minilm_encoding_bf16":
        return encoding(X_train["Review Text"].dropna().head(1000), name)
    if name == "minilm_encoding_bf16_128":
        texts = X_train["Review Text"].dropna().reset_index(drop=True)
        return encoding((texts.head(500) + " " + texts.iloc[500:1000].values), name)
    if name == "widemm_minilm_finetuned_top2":
        X_train, y_train = X_train.head(SUBSAMPLE), y_train.head(SUBSAMPLE)
    model = tfidf_logreg() if name.startswith("sklearn") else widemm(name)
    _, fit_s = timed(lambda: model.fit(X_train, y_train))
    proba, predict_s = timed(lambda: model.predict_proba(X_test)[:, 1])
    history = getattr(model, "history_", None)
    emit(
        {
            "bench": "reviews",
            "model": name,
            "train_rows": len(X_train),
            "roc_auc": roc_auc_score(y_test, proba),
            "accuracy": accuracy_score(y_test, proba > 0.5),
            "fit_seconds": fit_s,
            "epochs": None if history is None else len(history),
            "seconds_per_epoch": None if history is None else epoch_seconds(model),
            "predict_rows_per_s": len(X_test) / predict_s,
        }
    )


def speedup(X, y) -> None:
    """The same frozen-MiniLM model with and without the cache, 3 epochs each."""
    from widemm import WideDeepClassifier

    params = dict(
        text_model=MINILM, max_epochs=3, n_iter_no_change=None, random_state=0
    )
    cached = WideDeepClassifier(**params).fit(X, y)
    uncached = WideDeepClassifier(cache_features=False, **params).fit(X, y)
    emit(
        {
            "bench": "reviews",
            "model": "widemm_minilm_cache_speedup",
            "train_rows": len(X),
            "seconds_per_epoch": epoch_seconds(cached),
            "uncached_seconds_per_epoch": epoch_seconds(uncached),
            "cache_speedup": epoch_seconds(uncached) / epoch_seconds(cached),
        }
    )


def encoding(texts, name: str) -> None:
    """Rows/s of the cache's float32 and bf16 encodings, alternating A B A B."""
    import time

    import torch

    from widemm.cache import FeatureCache
    from widemm.models.text import HFTextEncoder
    from widemm.preprocessing import TextPreprocessor

    pre = TextPreprocessor(tokenizer=MINILM, max_length=128)
    tokens = pre.fit_transform(texts.to_frame())[texts.name]
    names = ("input_ids", "attention_mask")
    x = {k: torch.from_numpy(getattr(tokens, k)) for k in names}
    encoder = HFTextEncoder(MINILM).eval()
    rates: dict[bool, list[float]] = {False: [], True: []}
    out = {}
    for bf16 in (False, True, False, True):
        start = time.perf_counter()
        out[bf16] = FeatureCache(bf16=bf16)("t", encoder, x)["embedding"]
        rates[bf16].append(len(texts) / (time.perf_counter() - start))
    cosine = torch.nn.functional.cosine_similarity(out[False], out[True])
    emit(
        {
            "bench": "reviews",
            "model": name,
            "train_rows": len(texts),
            "mean_tokens": float(x["attention_mask"].sum(1).float().mean()),
            "rows_per_s_fp32": max(rates[False]),
            "rows_per_s_bf16": max(rates[True]),
            "speedup": max(rates[True]) / max(rates[False]),
            "min_cosine": float(cosine.min()),
        }
    )


if __name__ == "__main__":
    cli(__file__, __doc__, CANDIDATES, run, "reviews")
