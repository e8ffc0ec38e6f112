"""Contrastive pretraining on emoji: accuracy with few labels, text-image retrieval.

    python bench/pretrain.py              # every candidate, one JSON line each
    python bench/pretrain.py --run scarce_10

Emoji (image + ``name`` + tabular, ``sort_order`` dropped: it leaks), the fixed
stratified 80/20 split (seed 0), frozen MobileNetV2 at 96 px and frozen MiniLM as
in ``bench/images.py``. ``scarce_P``: P% of the 1,518 training rows keep their
``category``; with pretraining, ``pretrain`` first sees all 1,518 training rows
without labels (20 epochs), then ``fit`` the labeled ones; without, ``fit`` the
labeled ones alone. Accuracy on the 380 test rows, mean of 3 seeds (the labeled
rows and the model's seed change together), the seeds where pretraining
scored higher, and the seeds whose ``fit`` kept the pretrained start (it keeps
it only when it validates better than a fresh start; else the model is what
``fit`` alone gives). ``retrieval``: each test row's name
embedding against every test image's, cosine similarity, the share whose own
image ranks first (@1) or in the top 5 (@5): after pretraining, with the same
projections untrained (``epochs=0``: the frozen encoders' raw embeddings through
a random projection), and chance. The frozen encoders' outputs are computed once
per process and shared by every model (the same weights, so the same outputs).
``scarce_P_cnn``: the same with a small CNN learning the images from scratch (at
48 px) instead of the frozen MobileNetV2: pretraining can teach it from the
unlabeled rows (aligning it with the names), where a frozen encoder only gets a
new linear projection. ``scarce_P_bag``: the names read by the default text
model, a bag of words learned from the data, instead of the frozen MiniLM.
"""

from __future__ import annotations

import numpy as np
from common import cli, emit, timed
from images import EMOJI, SIZE, WEIGHTS, emoji

SHARES = (5, 10, 25)
CANDIDATES = [
    *(f"scarce_{p}" for p in SHARES),
    *(f"scarce_{p}_cnn" for p in SHARES[:2]),
    *(f"scarce_{p}_bag" for p in SHARES[:2]),
    "retrieval",
]
CNN_SIZE = 48
MINILM = "sentence-transformers/all-MiniLM-L6-v2"
VARIANTS = {
    "": "",
    "cnn": f", small CNN at {CNN_SIZE} px",
    "bag": ", bag-of-words names",
}
SEEDS = 3
_SHARED = None


def model(seed: int, variant: str = ""):
    from widemm import WideDeepClassifier
    from widemm.pipeline import FeaturePipeline

    global _SHARED
    if _SHARED is None:  # one cache for every model of this process
        _SHARED = FeaturePipeline.feature_cache
        cache = {}

        def shared(self):
            return cache.setdefault("cache", _SHARED(self))

        FeaturePipeline.feature_cache = shared
    if variant == "cnn":  # a small CNN that learns from scratch
        image = {"image_model": "small_cnn", "image_size": CNN_SIZE}
    else:
        image = {"image_model": "mobilenet_v2", "image_params": {"weights": WEIGHTS}}
        image["image_size"] = SIZE
    return WideDeepClassifier(
        **image,
        image_root=str(EMOJI),
        text_cols=["name"],
        text_model="bag" if variant == "bag" else MINILM,
        random_state=seed,
    )


def scarce(share: int, variant: str = "") -> None:
    X_train, X_test, y_train, y_test = emoji()
    rows = {"without": [], "with": []}
    kept = 0  # seeds whose fit kept the pretrained start (not the fresh one)
    seconds = {"without": 0.0, "with": 0.0}
    for seed in range(SEEDS):
        labeled = y_train.sample(frac=share / 100, random_state=seed).index
        plain = model(seed, variant)
        X_few, y_few = X_train.loc[labeled], y_train[labeled]
        _, s = timed(lambda m=plain, X=X_few, y=y_few: m.fit(X, y))
        rows["without"].append(plain.score(X_test, y_test))
        seconds["without"] += s
        pre = model(seed, variant)
        _, s = timed(
            lambda m=pre, X=X_few, y=y_few: m.pretrain(X_train, epochs=20).fit(X, y)
        )
        rows["with"].append(pre.score(X_test, y_test))
        kept += pre.start_["kept"] == "pretrained"
        seconds["with"] += s
    emit({
        "model": f"{share}% labeled ({len(labeled)} rows)"
        + VARIANTS[variant],
        "accuracy_without": float(np.mean(rows["without"])),
        "accuracy_with": float(np.mean(rows["with"])),
        "gain": float(np.mean(rows["with"]) - np.mean(rows["without"])),
        "seeds_gained": int(np.sum(np.subtract(rows["with"], rows["without"]) > 0)),
        "std_with": float(np.std(rows["with"])),
        "seeds_kept_pretrained": kept,
        "fit_seconds_without": seconds["without"] / SEEDS,
        "pretrain_and_fit_seconds": seconds["with"] / SEEDS,
    })  # fmt: skip


def recall_at(text: np.ndarray, image: np.ndarray, k: int) -> float:
    """Share of rows whose own image is among the k most similar to their text."""
    text = text / np.linalg.norm(text, axis=1, keepdims=True)
    image = image / np.linalg.norm(image, axis=1, keepdims=True)
    similarity = text @ image.T
    own = np.diag(similarity)
    rank = (similarity > own[:, None]).sum(1)  # images ranked above the own one
    return float((rank < k).mean())


def retrieval() -> None:
    X_train, X_test, _, _ = emoji()
    for label, epochs in (("pretrained", 20), ("untrained projection", 0)):
        est = model(0).pretrain(X_train, epochs=epochs)  # no labels, no fit
        text = est.embed(X_test, column="name")
        image = est.embed(X_test, column="image_path")
        emit({
            "model": f"retrieval, {label}",
            "recall_at_1": recall_at(text, image, 1),
            "recall_at_5": recall_at(text, image, 5),
        })  # fmt: skip
    emit({
        "model": "retrieval, chance",
        "recall_at_1": 1 / len(X_test),
        "recall_at_5": 5 / len(X_test),
    })  # fmt: skip


def run(name: str) -> None:
    if name == "retrieval":
        return retrieval()
    _, share, *variant = name.split("_")
    return scarce(int(share), *variant)


if __name__ == "__main__":
    cli(__file__, __doc__, CANDIDATES, run, "pretrain")
