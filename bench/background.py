"""How much an explanation depends on which training rows form its background.

    python bench/background.py    # JSON lines; writes results/background.json

One Adult model explains the same 100 test rows (gradient method) against
backgrounds of 20 and of 50 training rows, each drawn with seeds 0-4: uniformly
(as ``sample`` would), and as a model keeps its default background at fit (50
rows at evenly spaced quantiles of its output over a 2,000-row sample). Reported
per kind: the spread of the base value over the seeds, the smallest Spearman
correlation of the global column ranking between two seeds, and the share of
(row, column) attributions larger than 0.05 logit whose sign differs between two
seeds.
"""

from __future__ import annotations

import itertools

import numpy as np
from common import emit, save_results, split, timed
from scipy.stats import spearmanr

from widemm import WideDeepClassifier
from widemm.pipeline import spread_rows


def main() -> None:
    X_train, X_test, y_train, _ = split("adult", "income")
    model = WideDeepClassifier(random_state=0).fit(X_train, y_train)
    rows = X_test[:100]
    results = []
    for size, spread in ((20, False), (50, False), (50, True)):
        runs, seconds = [], 0.0
        for seed in range(5):
            pool = X_train.sample(2000 if spread else size, random_state=seed)
            if spread:  # as a model keeps at fit: rows spread over its outputs
                logits = np.log(model.predict_proba(pool))
                pool = pool.iloc[spread_rows(logits[:, 1:] - logits[:, :1], size)]
            background = pool
            e, s = timed(lambda b=background: model.explain(rows, background=b))
            runs.append(e)
            seconds += s
        base = [float(e.base_value.iloc[0]) for e in runs]
        pairs = list(itertools.combinations(runs, 2))
        ranks = [
            spearmanr(a.importance().set_index("column")["importance"],
                      b.importance().set_index("column")["importance"]
                      .reindex(a.importance()["column"])).statistic
            for a, b in pairs
        ]  # fmt: skip
        flips = []
        for a, b in pairs:
            big = (a.values.abs() > 0.05) & (b.values.abs() > 0.05)
            flips.append(
                float((np.sign(a.values) != np.sign(b.values))[big].mean().mean())
            )
        row = {
            "model": f"{size} rows, {'spread over outputs' if spread else 'uniform'}",
            "rows_explained": len(rows),
            "base_value_min": round(min(base), 4),
            "base_value_max": round(max(base), 4),
            "base_value_spread": round(max(base) - min(base), 4),
            "min_spearman_between_seeds": round(float(min(ranks)), 4),
            "max_sign_flip_share": round(max(flips), 4),
            "seconds_per_explain": round(seconds / 5, 2),
            "top_columns": ", ".join(runs[0].importance()["column"][:4]),
        }
        emit(row)
        results.append(row)
    save_results("background", results)


if __name__ == "__main__":
    main()
