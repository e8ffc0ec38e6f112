"""The network a fitted pipeline's inputs feed, with defaults adapted to the data."""

from __future__ import annotations

import difflib
import json
from collections.abc import Callable, Mapping
from functools import partial
from pathlib import Path
from typing import Any

from widemm.cache import is_frozen
from widemm.models import (
    FUSIONS,
    IMAGE_MODELS,
    TAB_MODELS,
    Encoder,
    Wide,
    WideDeep,
    make_fusion,
    make_tab_model,
)
from widemm.models.image import make_image_model
from widemm.models.text import make_text_model
from widemm.models.wide import TreeLogits
from widemm.schema import ColumnSchema

# Training rows per numeric column from which the MLP embeds numbers periodically.
PERIODIC_MIN_ROWS = 100
# Training rows for which tab_model="auto" is TabM; the MLP outside: on small
# tables it measured as good or better, and on large ones TabM's k members cost
# about 15x the MLP's time per row.
TABM_ROWS = (2_000, 100_000)


def tab_model_name(
    tab_model: str | Callable[..., Encoder], n_rows: int, trees: bool = False
) -> str | Callable[..., Encoder]:
    """Return ``tab_model``, ``"auto"`` resolved: the MLP beside trees, else TabM.

    TabM from ``TABM_ROWS[0]`` to ``TABM_ROWS[1]`` training rows, else the MLP.
    Beside the trees the MLP learns what they miss at a fifteenth of TabM's
    time, and the two score as well as the best tree (``bench/quality.py``).
    """
    if tab_model != "auto":
        return tab_model
    low, high = TABM_ROWS
    return "tabm" if low <= n_rows < high and not trees else "mlp"


CHOICES: dict[str, tuple[Any, ...]] = {
    "on_error": ("raise", "mask"),
    "scaling": ("standard", "quantile", None),
    "trees": (True, False, "auto"),
    "time_ordered": (True, False, "auto"),
}


def check_names(params: Mapping[str, Any]) -> None:
    """Refuse a pipeline parameter that names nothing widemm builds.

    ``fit`` and ``load`` both check: a model folder whose ``tab_model`` says
    ``"os.system"`` is refused, as a fit with it is. A ``text_model`` folder
    with its own model code (``auto_map`` in its ``config.json``) is refused:
    widemm runs no code from model folders.
    """
    names = {
        "tab_model": {"auto", *TAB_MODELS},
        "fusion": set(FUSIONS),
        "image_model": set(IMAGE_MODELS),
    }
    for key, known in names.items():
        value = params.get(key)
        if value is None or callable(value) or value in known:
            continue
        if key == "image_model":  # torchvision's: importing it takes 2 s
            from torchvision import models as vision

            known = {*known, *vision.list_models(module=vision)}
        if value not in known:
            close = difflib.get_close_matches(str(value), sorted(known), n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            listed = f"; choose one of {sorted(known)}" if len(known) < 20 else ""
            raise ValueError(f"Unknown {key} {value!r}{listed}.{hint}")
    for key, choices in CHOICES.items():
        if key in params and params[key] not in choices:
            raise ValueError(f"{key} must be one of {choices}, got {params[key]!r}.")
    text = params.get("text_model")
    if isinstance(text, str) and (Path(text) / "config.json").is_file():
        config = json.loads((Path(text) / "config.json").read_text())
        if "auto_map" in config:
            raise ValueError(
                f"text_model={text!r} is a folder with its own model code (auto_map "
                "in its config.json): widemm runs no code from model folders."
            )


def tab_params(
    params: Mapping[str, Any], schema: ColumnSchema, n_rows: int, trees: bool
) -> dict[str, Any]:
    """Return ``tab_params`` plus the data's default for numeric embeddings.

    ``params`` are the pipeline's, ``schema`` and ``n_rows`` of its fit.
    Periodic embeddings (``cont_embed_dim``) need rows: with fewer than
    ``PERIODIC_MIN_ROWS`` training rows per numeric column the MLP reads the
    scaled values as they are. Measured (``bench/quality.py``): without them
    wine 0.865 -> 0.983 accuracy, diabetes R² 0.20 -> 0.46, breast cancer AUC
    0.983 -> 0.994, digits 0.942 -> 0.972; with them California at 2,000 rows
    (250 a column) R² 0.72 against 0.64, Adult AUC 0.924 against 0.912.
    """
    out = dict(params["tab_params"] or {})
    n_cont = len(schema.cont_cols) + len(schema.date_cols)
    if (
        tab_model_name(params["tab_model"], n_rows, trees) in ("mlp", "tabm")
        and "cont_embed_dim" not in out
        and n_cont
        and n_rows / n_cont < PERIODIC_MIN_ROWS
    ):
        out["cont_embed_dim"] = 0
    return out


def build_network(
    params: Mapping[str, Any],
    fitted: Mapping[str, Any],
    heads: Mapping[str, int],
    pretrained: bool = True,
) -> WideDeep:
    """Build the network a fitted pipeline's inputs feed, with ``heads``.

    ``params`` and ``fitted`` are the pipeline's parameters and fitted
    attributes (see ``FeaturePipeline.build_model``).
    """
    pre, schema, n_rows = fitted["preprocessors_"], fitted["schema_"], fitted["n_rows_"]
    trees = "trees" in pre
    encoders: dict[str, Encoder] = {}
    if "tab" in pre:
        tab = pre["tab"]
        bags = {"bag_widths": tab.bag_widths_} if tab.bag_widths_ else {}
        name = tab_model_name(params["tab_model"], n_rows, trees)
        options = tab_params(params, schema, n_rows, trees)
        try:
            encoders["tab"] = make_tab_model(
                name,
                tab.cardinalities_,
                tab.embed_dims_,
                tab.n_cont_,
                **options,
                **bags,
            )
        except (TypeError, ValueError) as err:
            why = ""
            if params["tab_model"] == "auto":
                why = f" (tab_model='auto' chose it for {n_rows} training rows)"
            raise ValueError(
                f"tab_params {dict(params['tab_params'] or {})} do not suit "
                f"tab_model={name!r}{why}: {err}"
            ) from err
    text_params = dict(params["text_params"] or {})
    if "text_config_" in fitted:
        text_params["config"] = json.loads(fitted["text_config_"])
    encoders |= _encoders(
        schema.text_slots,
        partial(
            make_text_model,
            params["text_model"],
            pre["text"].vocab_size_ if "text" in pre else 0,
            pretrained,
            **text_params,
        ),
        params["share_encoders"],
    )
    encoders |= _encoders(
        schema.image_slots,
        partial(
            make_image_model,
            params["image_model"],
            pretrained,
            **(params["image_params"] or {}),
        ),
        params["share_encoders"],
    )
    projection = fitted["projection_dim_"]
    input_dims = {k: projection or enc.output_dim for k, enc in encoders.items()}
    fusion = make_fusion(
        params["fusion"], input_dims, **(params["fusion_params"] or {})
    )
    n_outputs = sum(heads.values())
    wide = None
    if "wide" in pre:
        wide = Wide(pre["wide"].n_indices_, n_outputs, pre["wide"].padding_idx)
    logits = TreeLogits(n_outputs) if trees else None
    return WideDeep(encoders, fusion, heads, wide, projection, logits)


def _encoders(
    slots: Mapping[str, str], make: Callable[[], Encoder], share: bool
) -> dict[str, Encoder]:
    """Make an encoder per slot; one for all when ``share``, and when it is frozen.

    A frozen encoder's weights never change: shared, it is one copy in memory
    and in the saved file.
    """
    out: dict[str, Encoder] = {}
    shared: Encoder | None = None
    for slot in slots:
        encoder = shared or make()
        if share or is_frozen(encoder):
            shared = encoder
        out[slot] = encoder
    return out
