"""The estimators' parameters, each declared once: where it is used.

An estimator's parameters are, in this order: :class:`~widemm.pipeline.
FeaturePipeline`'s (how columns become inputs, which network they feed);
the :class:`~widemm.training.TrainConfig` fields named in ``TRAINING``; the
keyword arguments of ``BaseWideDeep.__init__`` (the estimator's own); and those
of the estimator class's ``__init__`` (its task options). The signature the
estimators show (``help``, ``get_params``, ``clone``, the API reference) is
built from those declarations, names, defaults and annotations, so a default
changed where its parameter is declared changes everywhere.
"""

from __future__ import annotations

import difflib
import inspect
from collections.abc import Callable
from typing import Any

from widemm.pipeline import FeaturePipeline
from widemm.training import TrainConfig

# The TrainConfig fields an estimator takes as parameters (the others it sets
# itself, or takes in ``trainer_params``).
TRAINING = (
    "learning_rate",
    "weight_decay",
    "lr_scheduler",
    "n_iter_no_change",
    "verbose",
    "device",
    "num_workers",
    "checkpoint_dir",
)


# Settings that change neither the model nor the data order: not a run's identity.
# (Calibration happens after training: a run resumes whatever its value.)
NOT_RUN = (
    "verbose",
    "device",
    "num_workers",
    "callbacks",
    "checkpoint_dir",
    "calibrate",
)


def run_settings(values: dict[str, Any]) -> dict[str, Any]:
    """Return the parameters among an estimator's ``values`` that decide a run."""
    return {k: v for k, v in values.items() if k not in NOT_RUN}


def shared_parameters() -> dict[str, inspect.Parameter]:
    """Return the pipeline's and the training's parameters, by name.

    ``verbose`` and ``device`` are both: their defaults must agree.
    """
    params = dict(inspect.signature(FeaturePipeline).parameters)
    config = inspect.signature(TrainConfig).parameters
    for name in TRAINING:
        p = config[name]
        if name in params and params[name].default != p.default:
            raise TypeError(
                f"{name} defaults to {params[name].default!r} in FeaturePipeline "
                f"but to {p.default!r} in TrainConfig: they must agree."
            )
        params.setdefault(name, p)
    return params


def pipeline_parameters(values: dict[str, Any]) -> dict[str, Any]:
    """Return the ``FeaturePipeline`` parameters of an estimator's ``values``."""
    return {k: values[k] for k in inspect.signature(FeaturePipeline).parameters}


def training_parameters(values: dict[str, Any]) -> dict[str, Any]:
    """Return the ``TrainConfig`` fields among an estimator's ``values``."""
    return {k: values[k] for k in TRAINING}


def set_shared_parameters(estimator: Any, params: dict[str, Any]) -> None:
    """Set the shared parameters on ``estimator``: those in ``params``, else defaults.

    A name that is no parameter of the estimator raises a TypeError naming it
    (and the closest parameter).
    """
    shared = shared_parameters()
    unknown = sorted(set(params) - set(shared))
    if unknown:
        names = estimator._get_param_names()
        close = difflib.get_close_matches(unknown[0], names, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise TypeError(
            f"{type(estimator).__name__}() got unexpected keyword argument(s) "
            f"{unknown}.{hint}"
        )
    for name, p in shared.items():
        setattr(estimator, name, params.get(name, p.default))


def sign(init: Callable[..., None], *bases: Callable[..., None]) -> None:
    """Give ``init`` the estimator's whole signature (``__signature__``).

    ``self``, the shared parameters, then the keyword parameters the
    ``bases``' ``__init__`` and ``init`` itself declare (not ``**params``), as
    declared: ``inspect.signature``, ``get_params`` and ``help`` read it.
    """
    own = {p.name: p for f in (*bases, init) for p in _declared(f)}  # last wins
    params = [
        inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD),
        *(
            p.replace(kind=inspect.Parameter.KEYWORD_ONLY)
            for p in shared_parameters().values()
        ),
        *own.values(),
    ]
    init.__signature__ = inspect.Signature(params, return_annotation=None)  # type: ignore[attr-defined]


def _declared(init: Callable[..., None]) -> list[inspect.Parameter]:
    """Return the keyword parameters ``init``'s code declares (not ``**params``).

    Read from the function itself, not its ``__signature__``, which ``sign``
    replaces.
    """
    code = init.__code__
    names = code.co_varnames[
        code.co_argcount : code.co_argcount + code.co_kwonlyargcount
    ]
    defaults, annotations = init.__kwdefaults__ or {}, init.__annotations__
    empty = inspect.Parameter.empty
    return [
        inspect.Parameter(
            name,
            inspect.Parameter.KEYWORD_ONLY,
            default=defaults.get(name, empty),
            annotation=annotations.get(name, empty),
        )
        for name in names
    ]
