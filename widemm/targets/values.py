"""Numeric targets (regression): :class:`Values`, optionally as quantiles."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator

from widemm.heads import Head, Kind
from widemm.scores import value_scores
from widemm.targets.common import _index, _refuse_missing, standardise


class Values(BaseEstimator):
    """Numeric targets (regression): one column or several, each standardised.

    Parameters
    ----------
    name : str
    quantiles : sequence of float, optional
        Predict these quantiles of each target (pinball loss); ``predict``
        returns the 0.5 quantile, which they must include. ``calibrate``
        shifts them on validation rows (``offsets_``).
    allow_missing : bool
        Missing values are masked out of the loss (per target column).
    weight : float
    """

    def __init__(
        self,
        name: str = "y",
        quantiles: Sequence[float] | None = None,
        allow_missing: bool = False,
        weight: float = 1.0,
    ) -> None:
        self.name = name
        self.quantiles = quantiles
        self.allow_missing = allow_missing
        self.weight = weight

    def fit(self, y: Any) -> Values:
        if self.quantiles is not None:
            q = list(self.quantiles)
            if not q or 0.5 not in q or not all(0 < v < 1 for v in q) or q != sorted(q):
                raise ValueError(
                    "quantiles must be increasing values in (0, 1) that include 0.5 "
                    f"(predict returns the median), got {self.quantiles!r}."
                )
        values = self._values(y)
        self.n_targets_ = values.shape[1]
        known = np.isfinite(values)
        self.mean_, self.scale_ = standardise(values)
        self.known_ = float(known.mean())
        self.baseline_ = 1.0  # the mean's squared error on standardised values
        if self.quantiles is not None:  # each quantile's pinball loss
            z = (values - self.mean_) / self.scale_
            losses = []
            for level in self.quantiles:
                error = z - np.nanquantile(z, level, axis=0)
                pinball = np.maximum(level * error, (level - 1) * error)
                losses.append(np.nanmean(pinball))
            self.baseline_ = max(float(np.mean(losses)), 1e-3)
        return self

    def _values(self, y: Any) -> np.ndarray:
        try:
            values = np.asarray(y, dtype=np.float64)
        except (TypeError, ValueError) as err:
            raise ValueError(
                f"Target {self.name!r} must be numeric for regression: {err}"
            ) from None
        values = values.reshape(len(values), -1)
        missing = ~np.isfinite(values)
        if not self.allow_missing or np.isinf(values).any():
            rows = np.asarray(missing.any(axis=1))
            _refuse_missing(
                self.name,
                rows,
                _index(y),
                values[:, 0] if values.shape[1] == 1 else [r.tolist() for r in values],
            )
        return values

    @property
    def kind(self) -> Kind:
        return "regression"

    @property
    def n_outputs(self) -> int:
        """Outputs: one per target column, or per (column, quantile)."""
        return self.n_targets_ * len(self.quantiles or (None,))

    @property
    def n_columns(self) -> int:
        return self.n_targets_

    def head(self) -> Head:
        return Head(
            self.name,
            "regression",
            self.n_targets_,
            weight=self.weight,
            known=self.known_,
            quantiles=None if self.quantiles is None else tuple(self.quantiles),
            baseline=self.baseline_,
        )

    def encode(self, y: Any) -> np.ndarray:
        values = self._values(y)
        if values.shape[1] != self.n_targets_:
            raise ValueError(
                f"Target {self.name!r} was fitted on {self.n_targets_} column(s); got "
                f"{values.shape[1]}."
            )
        return ((values - self.mean_) / self.scale_).astype(np.float32)

    def calibrate(self, block: np.ndarray, y: np.ndarray) -> None:
        """Shift each quantile to hold its level on the validation rows.

        ``offsets_``: the share of validation rows below each shifted quantile
        is its level (split-conformal); no-op without quantiles.
        """
        if self.quantiles is None:
            return
        z = block.astype(np.float64).reshape(len(block), self.n_targets_, -1)
        errors = y.astype(np.float64)[:, :, None] - z
        self.offsets_ = np.stack(
            [
                np.nanquantile(errors[:, :, j], q, axis=0)
                for j, q in enumerate(self.quantiles)
            ],
            axis=1,
        )

    def quantiles_of(self, block: np.ndarray) -> np.ndarray:
        """(n_rows, n_targets, n_quantiles) predicted quantiles, in target units."""
        z = block.astype(np.float64).reshape(len(block), self.n_targets_, -1)
        z = z + getattr(self, "offsets_", 0.0)
        z = np.sort(z, axis=-1)  # quantiles never cross
        return z * self.scale_[None, :, None] + self.mean_[None, :, None]

    def predict(self, block: np.ndarray) -> np.ndarray:
        """(n_rows, n_targets) values: the mean, or the median with quantiles."""
        if self.quantiles is None:
            return block.astype(np.float64) * self.scale_ + self.mean_
        return self.quantiles_of(block)[:, :, list(self.quantiles).index(0.5)]

    def scores(
        self, block: np.ndarray, codes: np.ndarray, columns: Sequence[str] = ()
    ) -> dict[str, float]:
        """Score predictions on each column's known rows (see ``widemm.scores``).

        In the target's units; several columns prefix their scores with their
        names (``columns``, by default ``y0``, ``y1``, ...).
        """
        truth = codes.astype(np.float64) * self.scale_ + self.mean_
        predicted = self.predict(block)
        if self.n_targets_ == 1:
            known = ~np.isnan(truth[:, 0])
            return value_scores(predicted[known, 0], truth[known, 0])
        names = list(columns) or [f"y{j}" for j in range(self.n_targets_)]
        out = {}
        for j, column in enumerate(names):
            known = ~np.isnan(truth[:, j])
            scores = value_scores(predicted[known, j], truth[known, j])
            out.update({f"{column}_{k}": v for k, v in scores.items()})
        return out
