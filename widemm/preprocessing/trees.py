"""Gradient-boosted trees over the tabular inputs: scores the model adds to its logits.

The Wide & Deep "wide" part memorises feature crosses; gradient-boosted trees are
learned crosses (GBDT + logistic regression, He et al. 2014; DeepGBM, Ke et al.
2019). :class:`TreeScores` fits LightGBM on the tabular part's inputs (the
categorical codes as categories, the continuous values) for each target column,
cross-fitted: every training row's score comes from the trees that did not see
it (:meth:`TreeScores.fit` keeps them, ``out_of_fold``), so the deep parts learn
what the trees miss rather than trusting trees that memorised their rows. Other
rows get the mean of the fold models' scores. Scores are raw (logits; for
regression the standardised target), laid out as the model's outputs.

Trees are flat beyond the values they saw: a regression column's score follows
a line there instead, a ridge regression's slope on each continuous input times
how far the value lies beyond the fit range (``linear_``; ``TabPreprocessor``
passes values up to ``REACH`` widths of that range beyond it). Within the fit
range the line adds nothing: the trees' scores are unchanged there.

With ``text_cols``, each text column's TF-IDF feeds a linear model per target
column, cross-fitted too (:mod:`widemm.preprocessing.lines`); the trees
read its scores beside the tabular inputs, and a text column's TreeSHAP value is
that of its scores. Without ``boost`` (small tables) there are no trees: a line
of the continuous inputs per target column, cross-fitted the same way, gives
the scores, and each input's attribution is its term of the line.

Models are kept as LightGBM's text format (no pickle): saved with the pipeline
and read back by the torch-free ONNX runtime too. TreeSHAP attributions come from
LightGBM itself (``pred_contrib``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

from widemm.preprocessing.boosting import (
    Layout,
    as_outputs,
    lgb_params,
    train_folds,
    tree_models,
)
from widemm.preprocessing.lines import (
    CS,
    DENSE_CS,
    fit_line,
    fit_slopes,
    fit_vocabulary,
    line_scores,
    vectors,
)


class TreeScores(BaseEstimator):
    """LightGBM per target column, cross-fitted, giving a score per model output.

    Parameters
    ----------
    layout : sequence of (kind, n_targets, n_classes, n_per_target)
        The heads' outputs, in order (see ``boosting.Layout``).
    n_folds : int
        Folds of the cross-fitting (and models whose mean scores new rows).
    n_estimators : int
        Most boosting rounds; each fold model stops after ``early_stopping``
        rounds without gain on a tenth of its training rows held out.
    learning_rate, feature_fraction, extra_trees : float, float, bool or "auto"
        LightGBM's settings; ``extra_trees`` splits each node at a random
        threshold per input instead of the best one. ``"auto"``: by the rows
        and inputs (text scores included), as
        ``widemm.preprocessing.boosting.auto_settings`` says and measured.
    num_leaves, min_child_samples : int
        LightGBM's settings.
    early_stopping : int
        Patience in rounds.
    random_state : int
        Seeds the folds, the held-out tenths and LightGBM. Every target column
        draws the same tenths, so a column's trees are the same whichever
        columns sit beside it (a multi-task model's are those of a model of
        that column alone).
    text_cols : sequence of str
        Text columns whose linear models' scores the trees read too.
    boost : bool
        False: no trees, but a linear model of the continuous inputs per target
        column (ridge, or logistic regression Platt-scaled on its out-of-fold
        scores; its strength the best out of fold of ``DENSE_CS``) whose scores
        are the scores. ``trees="auto"`` fits it below 300 training rows.
    ordered : bool
        The rows come in time order: the folds are runs of consecutive rows
        (unshuffled), and each fold's trees stop on its last tenth.

    Attributes
    ----------
    boosters_ : list of list of str
        Per tree model (a binary, multiclass or regression target column): its
        folds' LightGBM models as text; an empty list where a column cannot be
        fitted (fewer than two classes): its scores are 0; or where one line is
        all there is (one text column and no tabular input, or no ``boost``):
        its scores are the scores.
    linear_ : list of list of float
        Per tree model, a regression column's: the slope of its score on each
        continuous input beyond the fit range (a ridge regression's
        coefficients); an empty list for classes.
    range_ : list of list of float
        The fit range of each continuous input: lows, then highs.
    n_cat_, n_features_ : int
        Categorical inputs (the first ones) and all tabular inputs of the trees.
    text_vocab_, text_idf_ : list
        Per text column, its TF-IDF terms (term -> feature) and their idf.
    lines_ : list of list of list of ndarray
        Per tree model, per line (each text column; without ``boost`` the
        continuous inputs), its coefficients (width, n_inputs) and intercepts
        (width,).
    """

    def __init__(
        self,
        layout: Sequence[Layout] = (),
        *,
        n_folds: int = 5,
        n_estimators: int = 2000,
        learning_rate: float | Literal["auto"] = "auto",
        feature_fraction: float | Literal["auto"] = "auto",
        extra_trees: bool | Literal["auto"] = "auto",
        num_leaves: int = 31,
        min_child_samples: int = 20,
        early_stopping: int = 50,
        random_state: int = 0,
        text_cols: Sequence[str] = (),
        boost: bool = True,
        ordered: bool = False,
    ) -> None:
        self.layout = layout
        self.n_folds = n_folds
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.feature_fraction = feature_fraction
        self.extra_trees = extra_trees
        self.num_leaves = num_leaves
        self.min_child_samples = min_child_samples
        self.early_stopping = early_stopping
        self.random_state = random_state
        self.text_cols = text_cols
        self.boost = boost
        self.ordered = ordered

    def fit(
        self,
        cat: np.ndarray,
        cont: np.ndarray,
        y: np.ndarray,
        sample_weight: np.ndarray | None = None,
        texts: pd.DataFrame | None = None,
    ) -> TreeScores:
        """Fit the trees on the inputs and encoded targets (NaN: unknown).

        ``sample_weight``: each row's weight in the trees' loss; ``texts``, the
        rows' ``text_cols``.

        ``out_of_fold`` then holds each row's score from the trees that did not
        see it (not saved: it is for the fit that follows).
        """
        import lightgbm as lgb
        from sklearn.model_selection import KFold

        self.n_cat_, features = cat.shape[1], _features(cat, cont)
        self.n_features_ = features.shape[1]
        n = len(features)
        shuffle = not self.ordered
        folds = list(
            KFold(
                min(self.n_folds, n),
                shuffle=shuffle,
                random_state=self.random_state if shuffle else None,
            ).split(features)
        )
        cont = cont.astype(np.float64)
        self.range_ = [cont.min(0).tolist(), cont.max(0).tolist()] if n else [[], []]
        self.boosters_: list[list[str]] = []
        self.linear_: list[list[float]] = []
        self.lines_: list[list[list[np.ndarray]]] = []
        texts = pd.DataFrame(index=range(n)) if texts is None else texts
        vocabularies = [fit_vocabulary(texts[c]) for c in self.text_cols]
        self.text_vocab_ = [v for v, _ in vocabularies]
        self.text_idf_ = [idf for _, idf in vocabularies]
        matrices = self._line_inputs(cont, texts)
        line = (CS, False) if self.boost else (DENSE_CS, True)  # strengths, rescale
        settings = {
            "learning_rate": self.learning_rate,
            "feature_fraction": self.feature_fraction,
            "extra_trees": self.extra_trees,
            "num_leaves": self.num_leaves,
            "min_child_samples": self.min_child_samples,
            "seed": self.random_state,
        }
        self.out_of_fold = np.zeros((n, self.n_outputs), dtype=np.float32)
        for column, objective, width, outputs in tree_models(self.layout):
            target = y[:, column].astype(np.float64)
            known = ~np.isnan(target)
            lines = [
                fit_line(A, target, objective, width, folds, sample_weight, *line)
                for A in matrices
            ]
            self.lines_.append([[coef, icpt] for _, coef, icpt in lines])
            if self._passes:  # the one line's scores are the scores
                self.out_of_fold[:, outputs] = as_outputs(lines[0][0], width, outputs)
                self.boosters_.append([])
                self.linear_.append([])
                continue
            inputs = np.hstack([features, *(scores for scores, _, _ in lines)])
            params = lgb_params(objective, width, (n, inputs.shape[1]), settings)
            # Binned once; each fold's model trains on a subset of these bins.
            data = lgb.Dataset(
                inputs,
                np.nan_to_num(target),
                weight=sample_weight,
                categorical_feature=list(range(self.n_cat_)),
                params={"verbose": -1},
                free_raw_data=False,
            ).construct()
            trains = [train[known[train]] for train, _ in folds]
            boosters: list[str] = []
            tenths = None if self.ordered else np.random.default_rng(self.random_state)
            if objective == "regression" or all(
                len(np.unique(target[rows])) > 1 for rows in trains
            ):  # else one class: no trees, scores 0
                fitted = train_folds(
                    params,
                    data,
                    trains,
                    tenths,
                    self.n_estimators,
                    self.early_stopping,
                )
                for booster, (_, held) in zip(fitted, folds, strict=True):
                    raw = np.asarray(booster.predict(inputs[held], raw_score=True))
                    scores = as_outputs(raw, width, outputs)
                    self.out_of_fold[np.ix_(held, outputs)] = scores
                    boosters.append(booster.model_to_string())
            self.boosters_.append(boosters)
            slope = objective == "regression" and boosters and cont.shape[1]
            self.linear_.append(
                fit_slopes(cont[known], target[known], _rows(sample_weight, known))
                if slope
                else []
            )
        return self

    @property
    def n_outputs(self) -> int:
        """The model's outputs these scores are laid out as."""
        return sum(
            n_classes if kind == "multiclass" else n_targets * per
            for kind, n_targets, n_classes, per in self.layout
        )

    def transform(
        self, cat: np.ndarray, cont: np.ndarray, texts: pd.DataFrame | None = None
    ) -> np.ndarray:
        """Scores (n_rows, n_outputs) float32: the mean of the fold models'."""
        check_is_fitted(self, "boosters_")
        features = _features(cat, cont)
        out = np.zeros((len(features), self.n_outputs), dtype=np.float32)
        beyond = self._beyond(cont)
        matrices = self._line_inputs(cont, texts)
        for boosters, slopes, lines, (_, _, width, outputs) in zip(
            self._loaded(),
            self.linear_,
            self.lines_,
            tree_models(self.layout),
            strict=True,
        ):
            scores = line_scores(lines, matrices)
            if self._passes:  # no trees, no slopes
                out[:, outputs] += as_outputs(scores[0], width, outputs)
                continue
            inputs = np.hstack([features, *scores])
            for booster in boosters:
                raw = np.asarray(booster.predict(inputs, raw_score=True))
                out[:, outputs] += as_outputs(raw, width, outputs) / len(boosters)
            if slopes:
                out[:, outputs] += (beyond @ np.asarray(slopes))[:, None]
        return out

    def contributions(
        self,
        cat: np.ndarray,
        cont: np.ndarray,
        output: int,
        texts: pd.DataFrame | None = None,
    ) -> np.ndarray:
        """TreeSHAP of one output's score per input, (n_rows, n_features_ + texts).

        The fold models' mean (as ``transform``), from LightGBM's ``pred_contrib``;
        a row's values sum to its score minus the trees' expected score. A
        continuous input beyond the fit range adds its line's term there; a text
        column's value is that of its scores (the last columns).
        """
        check_is_fitted(self, "boosters_")
        features = _features(cat, cont)
        n_texts = len(self.text_cols)
        out = np.zeros((len(features), self.n_features_ + n_texts))
        matrices = self._line_inputs(cont, texts)
        for boosters, slopes, lines, (_, _, width, outputs) in zip(
            self._loaded(),
            self.linear_,
            self.lines_,
            tree_models(self.layout),
            strict=True,
        ):
            if output not in outputs:
                continue
            if slopes:
                out[:, self.n_cat_ : self.n_features_] += self._beyond(cont) * slopes
            block = outputs.index(output) % width  # a multiclass model's class
            if not self.boost:  # a line's terms, each input's
                out[:, self.n_cat_ : self.n_features_] += cont * lines[0][0][block]
                continue
            scores = line_scores(lines, matrices)
            if self._passes:
                out[:, -1] += scores[0][:, block]
                continue
            inputs = np.hstack([features, *scores])
            n = len(boosters)
            for booster in boosters:
                contrib = np.asarray(booster.predict(inputs, pred_contrib=True))
                contrib = contrib.reshape(len(features), width, -1)[:, block, :-1]
                tabular, text = np.split(contrib, [self.n_features_], axis=1)
                per_text = text.reshape(len(features), -1, width).sum(2)
                out[:, : self.n_features_] += tabular / n
                out[:, self.n_features_ :] += per_text / n
        return out

    @property
    def _passes(self) -> bool:
        """Whether one line's scores are all there is: they pass through.

        Without ``boost``, the line of the continuous inputs; with it, a text
        column's when it is all there is to read (trees over one score only cut
        it into steps: fine foods' reviews, test ROC AUC 0.862 with trees over
        the linear model's score, 0.876 without).
        """
        alone = not self.n_features_ and len(self.text_cols) == 1
        return not self.boost or alone

    def _line_inputs(self, cont: np.ndarray, texts: pd.DataFrame | None) -> list[Any]:
        """Return the lines' inputs.

        Without ``boost`` the continuous values, else each text column's TF-IDF
        of the rows (none without ``text_cols``).
        """
        if not self.boost:
            return [np.asarray(cont, dtype=np.float64)]
        if not self.text_cols:
            return []
        if texts is None:
            raise ValueError(f"These trees read text columns {list(self.text_cols)}.")
        return [
            vectors(texts[c], vocab, idf)
            for c, vocab, idf in zip(
                self.text_cols, self.text_vocab_, self.text_idf_, strict=True
            )
        ]

    def _beyond(self, cont: np.ndarray) -> np.ndarray:
        """How far each continuous value lies beyond the fit range (0 within)."""
        cont = cont.astype(np.float64)
        return cont - np.clip(cont, *np.asarray(self.range_).reshape(2, -1))

    def _loaded(self) -> list[list[Any]]:
        """Return the boosters parsed from their text (once)."""
        import lightgbm as lgb

        if getattr(self, "_parsed", None) is None:
            self._parsed = [
                [lgb.Booster(model_str=text) for text in boosters]
                for boosters in self.boosters_
            ]
        return self._parsed

    def __getstate__(self) -> dict[str, Any]:
        state = super().__getstate__()  # copies re-parse; the scores stay with fit
        return {k: v for k, v in state.items() if k not in ("_parsed", "out_of_fold")}


def _rows(weight: np.ndarray | None, rows: np.ndarray) -> np.ndarray | None:
    return None if weight is None else weight[rows]


def _features(cat: np.ndarray, cont: np.ndarray) -> np.ndarray:
    """Return the trees' inputs: categorical codes (0 missing, 1 rare), continuous."""
    return np.concatenate([cat.astype(np.float64), cont.astype(np.float64)], axis=1)
