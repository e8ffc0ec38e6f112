"""What saving writes of a fitted pipeline, and all that loading accepts of it."""

from __future__ import annotations

from widemm.pipeline.features import FeaturePipeline
from widemm.preprocessing import fitted_classes


def pipeline_classes() -> dict[str, tuple[type, tuple[str, ...]]]:
    """Return the classes a fitted pipeline is made of, with their fitted attributes.

    What saving writes of each object, and all that loading accepts.
    """
    from widemm.persistence import class_key

    keys = (
        *("schema_", "preprocessors_", "text_config_", "summary_"),
        *("background_", "n_rows_", "projection_dim_"),
    )
    return {class_key(FeaturePipeline): (FeaturePipeline, keys), **fitted_classes()}
