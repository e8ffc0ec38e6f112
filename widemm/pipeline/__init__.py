"""The feature pipeline: DataFrame -> column roles -> preprocessors -> model inputs.

``FeaturePipeline`` is the one place that knows how a DataFrame's columns become
the model's input slots (``wide``, ``tab``, ``text_0``, ``image_0``, ...), which
slots a feature cache serves, and which network those slots feed. Estimators
fit one and keep it as ``pipeline_``; explanations and persistence use it and
the model it built, nothing else.

- ``features``: ``FeaturePipeline`` (roles, preprocessors, inputs, cache policy).
- ``network``: the network those inputs feed, with defaults adapted to the data.
- ``background``: the training rows kept as explanations' default background.
- ``summary``: column statistics for the model report.
- ``saving``: the classes a saved pipeline holds (its allowlist).
"""

from widemm.pipeline.background import spread_rows
from widemm.pipeline.features import FeaturePipeline
from widemm.pipeline.saving import pipeline_classes

__all__ = ["FeaturePipeline", "pipeline_classes", "spread_rows"]
