"""Model parts: every deep part is an ``nn.Module`` with an int ``output_dim``."""

from widemm.models.fusion import ConcatFusion, Fusion
from widemm.models.image import IMAGE_MODELS, ImageEncoder, SmallCNN, make_image_model
from widemm.models.layers import MLP, Encoder, Tokenized
from widemm.models.registry import FUSIONS, make_fusion
from widemm.models.tabular import TAB_MODELS, FTTransformer, TabMLP, make_tab_model
from widemm.models.text import TEXT_MODELS, BagEncoder, HFTextEncoder, make_text_model
from widemm.models.wide import Wide
from widemm.models.widedeep import WideDeep

__all__ = [
    "FUSIONS",
    "IMAGE_MODELS",
    "MLP",
    "TAB_MODELS",
    "TEXT_MODELS",
    "BagEncoder",
    "ConcatFusion",
    "Encoder",
    "FTTransformer",
    "Fusion",
    "HFTextEncoder",
    "ImageEncoder",
    "SmallCNN",
    "TabMLP",
    "Tokenized",
    "Wide",
    "WideDeep",
    "make_fusion",
    "make_image_model",
    "make_tab_model",
    "make_text_model",
]
