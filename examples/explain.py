"""Why did the model predict this? Column, token and global attributions, as PNGs.

Adult income: a waterfall of one person's column contributions and the global
importance of each column. Clothing reviews (frozen all-MiniLM-L6-v2 + tabular):
the words of a review shaded by how they move the "recommended" logit.

    python examples/explain.py    # writes examples/output/*.png
"""

from pathlib import Path

import pandas as pd

import widemm

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "examples" / "output"
MINILM = "sentence-transformers/all-MiniLM-L6-v2"


def adult() -> None:
    df = pd.read_parquet(ROOT / "data" / "adult.parquet").sample(20000, random_state=0)
    y = df.pop("income")
    model = widemm.WideDeepClassifier(random_state=0).fit(df[:18000], y[:18000])
    explanation = model.explain(df[18000:18200], background=df[:1000])
    print(explanation.importance().head(6).to_string(index=False))
    print(f"max |base + sum - output|: {explanation.max_error:.4f}")
    explanation.plot("waterfall").savefig(OUT / "adult_waterfall.png", dpi=100)
    explanation.plot("importance").savefig(OUT / "adult_importance.png", dpi=100)


def reviews() -> None:
    df = pd.read_parquet(ROOT / "data" / "womens_clothing_reviews.parquet")
    df = df.sample(3000, random_state=0)
    y = df.pop("Recommended IND")
    X = df.drop(columns=["Rating", "Clothing ID"])
    model = widemm.WideDeepClassifier(text_model=MINILM, random_state=0, verbose=1)
    model.fit(X[:2500], y[:2500])
    test = X[2500:]
    mixed = test["Review Text"].str.contains("but", na=False)
    rows = test[mixed & (test["Review Text"].str.len().between(150, 300))][:2]
    explanation = model.explain(rows, background=X[:200])
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
