"""A fitted model's report: one self-contained HTML page and a Markdown model card.

The page holds the column roles, the settings, statistics of the training
columns, the training and validation curves and, given labelled rows, their
metrics, a confusion matrix or residual plot, a calibration plot, global
importance and example explanations. Plots are matplotlib PNGs embedded in the
page, so the file opens anywhere, offline. They are drawn on
``matplotlib.figure.Figure`` objects: the process's matplotlib backend and
pyplot state stay as they were (a notebook keeps its inline plots).
"""

from __future__ import annotations

import base64
import datetime
import html
import io
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

REPORT, CARD = "report.html", "MODEL_CARD.md"
STYLE = """
body { font: 15px/1.5 system-ui, sans-serif; max-width: 980px; margin: 2em auto;
       padding: 0 1em; color: #222; }
h1 { font-size: 1.6em; } h2 { border-bottom: 1px solid #ddd; margin-top: 2em; }
table { border-collapse: collapse; font-size: 0.9em; margin: 0.5em 0; }
th, td { border: 1px solid #ddd; padding: 3px 8px; text-align: left; }
th { background: #f4f4f4; } img { max-width: 100%; } .note { color: #666; }
"""


def write_report(
    model: Any,
    folder: str | os.PathLike[str],
    data: tuple[pd.DataFrame, Any] | None = None,
) -> Path:
    """Write ``report.html`` and ``MODEL_CARD.md`` into ``folder``; return the page.

    ``data``: labelled rows (X, y) not used in training, for metrics, plots and
    example explanations; without them the report covers the model and its
    training only.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    name = type(model).__name__
    settings = _settings(model)
    sections = [
        ("Column roles", model.schema_.to_frame().to_html(index=False)),
        ("Settings", settings.to_html(index=False)),
        ("Training data", _summary(model).to_html(index=False)),
        ("Training", _curves(model.history_)),
    ]
    metrics: dict[str, float] = {}
    if data is not None:
        X, y = data
        metrics = model.scores(X, y)
        table = pd.DataFrame({"metric": list(metrics), "value": list(metrics.values())})
        sections.append((f"Held-out rows ({len(X)})", table.to_html(index=False)))
        if _single(model):
            sections.append(("Errors", _errors(model, X, y)))
        sections.append(("Explanations", _explanations(model, X)))
    else:
        sections.append(
            (
                "Held-out rows",
                '<p class="note">None given: run <code>widemm report '
                "MODEL --data FILE</code> to add metrics, plots and explanations.</p>",
            )
        )
    when = datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
    body = "\n".join(f"<h2>{html.escape(t)}</h2>\n{content}" for t, content in sections)
    page = (
        f"<!doctype html>\n<html lang='en'><head><meta charset='utf-8'>"
        f"<title>widemm {name}</title><style>{STYLE}</style></head><body>\n"
        f"<h1>{name}</h1><p class='note'>widemm report, {when}</p>\n{body}\n"
        "</body></html>\n"
    )
    (folder / REPORT).write_text(page)
    (folder / CARD).write_text(_card(model, settings, metrics))
    return folder / REPORT


def _single(model: Any) -> bool:
    """One target of one column: the plots of errors apply."""
    targets = model.targets_
    return (
        len(targets) == 1
        and targets[0].kind != "multilabel"
        and (targets[0].kind != "regression" or targets[0].n_targets_ == 1)
    )


def _figure(**kwargs: Any) -> Any:
    """Return a Figure outside pyplot (no backend, nothing to close)."""
    from matplotlib.figure import Figure

    return Figure(**kwargs)


def _png(fig: Any) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    data = base64.b64encode(buffer.getvalue()).decode()
    return f'<img alt="plot" src="data:image/png;base64,{data}">'


def _settings(model: Any) -> pd.DataFrame:
    """List the parameters that differ from the defaults, and the schedule used."""
    defaults = type(model)().get_params()
    rows = [
        (k, repr(v))
        for k, v in model.get_params().items()
        if repr(v) != repr(defaults[k])
    ]
    rows += [
        ("batch_size_ (used)", model.batch_size_),
        ("max_epochs_ (used)", model.max_epochs_),
    ]
    return pd.DataFrame(rows, columns=["setting", "value"])


def _summary(model: Any) -> pd.DataFrame:
    summary: pd.DataFrame = model.pipeline_.summary_
    return summary.assign(role=[model.schema_.role(c) for c in summary["column"]])


def _curves(history: pd.DataFrame) -> str:
    metrics = [
        c for c in history.columns if c.startswith("valid_") and c != "valid_loss"
    ]
    fig = _figure(figsize=(9, 3.2))
    axes = fig.subplots(1, 1 + bool(metrics), squeeze=False)
    ax = axes[0, 0]
    for column in ("train_loss", "valid_loss"):
        if column in history:
            ax.plot(history["epoch"], history[column], marker="o", label=column)
    ax.set(xlabel="epoch", ylabel="loss", title="Loss per epoch")
    ax.legend()
    if metrics:
        ax = axes[0, 1]
        ax.plot(history["epoch"], history[metrics[0]], marker="o", color="C2")
        ax.set(xlabel="epoch", ylabel=metrics[0], title="Validation metric")
    best = (
        history.loc[history["valid_loss"].idxmin()] if "valid_loss" in history else None
    )
    note = (
        f"<p>{len(history)} epochs; best validation loss {best['valid_loss']:.4g} at "
        f"epoch {int(best['epoch'])}.</p>"
        if best is not None
        else f"<p>{len(history)} epochs, no validation rows.</p>"
    )
    return note + _png(fig)


def _errors(model: Any, X: pd.DataFrame, y: Any) -> str:
    from sklearn.calibration import calibration_curve
    from sklearn.metrics import ConfusionMatrixDisplay

    y = np.asarray(y)
    if not hasattr(model, "predict_proba"):
        pred = model.predict(X)
        fig = _figure(figsize=(9, 3.6))
        axes = fig.subplots(1, 2)
        axes[0].scatter(y, pred, s=6, alpha=0.5)
        low, high = float(min(y.min(), pred.min())), float(max(y.max(), pred.max()))
        axes[0].plot([low, high], [low, high], color="grey", lw=1)
        axes[0].set(xlabel="actual", ylabel="predicted", title="Predicted vs actual")
        axes[1].hist(pred - y, bins=40)
        axes[1].set(xlabel="residual (predicted - actual)", title="Residuals")
        return _png(fig)
    proba = model.predict_proba(X)
    fig = _figure(figsize=(10, 4))
    axes = fig.subplots(1, 2)
    ConfusionMatrixDisplay.from_predictions(
        y,
        model.classes_[proba.argmax(1)],
        labels=model.classes_,
        ax=axes[0],
        colorbar=False,
        xticks_rotation=45,
    )
    axes[0].set_title("Confusion matrix")
    hit = model.classes_[proba.argmax(1)] == y  # calibration of the top class
    true, predicted = calibration_curve(
        hit, proba.max(1), n_bins=10, strategy="quantile"
    )
    axes[1].plot([0, 1], [0, 1], color="grey", lw=1)
    axes[1].plot(predicted, true, marker="o")
    axes[1].set(
        xlabel="predicted probability of the predicted class",
        ylabel="share correct",
        title="Calibration",
    )
    return _png(fig)


def _explanations(model: Any, X: pd.DataFrame) -> str:
    # A few rows against a small background: a sketch in seconds (explain more
    # rows with model.explain for firm conclusions).
    rows = X.head(min(len(X), 12))
    if len(rows) < 10:
        return '<p class="note">Fewer than 10 rows: no explanations.</p>'
    background = X.sample(min(len(X), 10), random_state=0)
    explanation = model.explain(rows, background=background, n_steps=16)
    parts = [
        f"<p>Attributions of the {explanation.output_name} on {len(rows)} rows "
        f"(method {explanation.method}).</p>",
        _png(explanation.plot("importance", max_columns=15)),
        _png(explanation.plot("waterfall", row=rows.index[0], max_columns=10)),
    ]
    schema = model.schema_
    first = rows.index[0]
    if schema.text_cols:
        column = schema.text_cols[0]
        parts.append(_png(explanation.plot("tokens", row=first, column=column)))
    if schema.image_cols:
        column = schema.image_cols[0]
        parts.append(
            _png(explanation.plot("regions", row=first, column=column, grid=4))
        )
    return "\n".join(parts)


def _card(model: Any, settings: pd.DataFrame, metrics: dict[str, float]) -> str:
    s = model.schema_
    roles = ", ".join(
        f"{role} {list(cols)}"
        for role, cols in (
            ("categorical", s.cat_cols),
            ("continuous", s.cont_cols),
            ("dates", s.date_cols),
            ("multi-valued", s.multi_cols),
            ("text", s.text_cols),
            ("image", s.image_cols),
        )
        if cols
    )
    ignored = ", ".join(f"{c} ({why})" for c, why in s.ignored.items())
    lines = [
        f"# Model card: {type(model).__name__}",
        "",
        "## Inputs",
        f"Columns by role: {roles}.",
        f"Ignored: {ignored or 'none'}.",
        "",
        "## Training",
        f"{len(model.history_)} epochs, batch size {model.batch_size_}.",
        "",
        "Settings that differ from the defaults:",
        *[f"- `{k}` = `{v}`" for k, v in settings.itertuples(index=False)],
        "",
        "## Evaluation",
        *(
            [f"- {k}: {v:.4g}" for k, v in metrics.items()]
            or ["Not evaluated on held-out rows (`widemm report MODEL --data FILE`)."]
        ),
        "",
        "## Limitations",
        "Trained on the data above only: rows unlike them (new categories, values "
        "outside the training ranges, other kinds of text or images) get less "
        "reliable predictions. See report.html for the details.",
    ]
    return "\n".join(lines) + "\n"
