"""Scikit-learn transformers that turn DataFrame columns into model inputs."""

from widemm.preprocessing.image import ImageColumn, ImagePreprocessor
from widemm.preprocessing.tabular import TabPreprocessor
from widemm.preprocessing.text import TextPreprocessor, TextTokens
from widemm.preprocessing.wide import WidePreprocessor

__all__ = [
    "ImageColumn",
    "ImagePreprocessor",
    "TabPreprocessor",
    "TextPreprocessor",
    "TextTokens",
    "WidePreprocessor",
]
