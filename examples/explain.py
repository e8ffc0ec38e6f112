"""Why did the model predict this? Column, token and global attributions, as PNGs.

Adult income: a waterfall of one person's column contributions and the global
importance of each column. Clothing reviews (frozen all-MiniLM-L6-v2 + tabular):
the words of a review shaded by how they move the "recommended" logit.

    python examples/explain.py            # writes examples/output/*.png
    python examples/explain.py --smoke    # few rows, 2 epochs, into ./output
"""

import sys
from pathlib import Path

import pandas as pd

import widemm
from widemm.datasets import load_adult

ROOT = Path(__file__).resolve().parents[1]
MINILM = "sentence-transformers/all-MiniLM-L6-v2"
SMOKE = "--smoke" in sys.argv
OUT = Path("output") if SMOKE else ROOT / "examples" / "output"
EPOCHS = 2 if SMOKE else "auto"
BACKGROUND = 50 if SMOKE else 1000  # rows each explanation is measured against


def adult() -> None:
    n = 1000 if SMOKE else 20000
    df = load_adult().sample(n, random_state=0)
    y = df.pop("income")
    train = int(n * 0.9)
    model = widemm.WideDeepClassifier(max_epochs=EPOCHS, random_state=0)
    model.fit(df[:train], y[:train])
    rows = df[train : train + (20 if SMOKE else 200)]
    explanation = model.explain(rows, background=df[:BACKGROUND])
    print(explanation.importance().head(6).to_string(index=False))
    print(f"max |base + sum - output|: {explanation.max_error:.4f}")
    explanation.plot("waterfall").savefig(OUT / "adult_waterfall.png", dpi=100)
    explanation.plot("importance").savefig(OUT / "adult_importance.png", dpi=100)


def reviews() -> None:
    df = pd.read_parquet(ROOT / "data" / "womens_clothing_reviews.parquet")
    n = 240 if SMOKE else 3000
    df = df.sample(n, random_state=0)
    y = df.pop("Recommended IND")
    X = df.drop(columns=["Rating", "Clothing ID"])
    model = widemm.WideDeepClassifier(
        text_model=MINILM, max_epochs=EPOCHS, random_state=0, verbose=1
    )
    train = n * 5 // 6
    model.fit(X[:train], y[:train])
    test = X[train:]
    mixed = test["Review Text"].str.contains("but", na=False)
    rows = test[mixed & (test["Review Text"].str.len().between(150, 300))][:2]
    explanation = model.explain(rows, background=X[: BACKGROUND // 5])
    for i, row in enumerate(rows.index):
        tokens = explanation.tokens(row, "Review Text")
        print(tokens.sort_values("attribution").to_string(index=False, max_rows=10))
        fig = explanation.plot("tokens", row=row, column="Review Text")
        fig.savefig(OUT / f"review_tokens_{i}.png", dpi=100)


if __name__ == "__main__":
    OUT.mkdir(parents=True, exist_ok=True)
    adult()
    reviews()
    print(f"plots in {OUT}")
