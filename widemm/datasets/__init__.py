"""Real data shipped with widemm, for examples and first steps.

``load_adult``: the UCI Adult census table (Becker & Kohavi, 1996; CC BY 4.0),
48,842 rows: ``income`` (``"<=50K"`` / ``">50K"``) and 14 columns, 8
categorical and 6 numeric, with their real missing values.
"""

from __future__ import annotations

from importlib.resources import files

import pandas as pd


def load_adult() -> pd.DataFrame:
    """Return the Adult census table (48,842 rows x 15 columns, target ``income``).

    Examples
    --------
    >>> from widemm.datasets import load_adult
    >>> load_adult().shape
    (48842, 15)
    """
    return pd.read_parquet(files("widemm.datasets") / "adult.parquet")
