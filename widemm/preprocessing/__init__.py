"""Scikit-learn transformers that turn DataFrame columns into model inputs."""

from widemm.preprocessing.tabular import TabPreprocessor
from widemm.preprocessing.wide import WidePreprocessor

__all__ = ["TabPreprocessor", "WidePreprocessor"]
