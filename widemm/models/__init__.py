"""Model parts: every deep part is an ``nn.Module`` with an int ``output_dim``."""

from widemm.models.fusion import FUSIONS, ConcatFusion, Fusion, make_fusion
from widemm.models.layers import MLP, Encoder
from widemm.models.tabular import TAB_MODELS, FTTransformer, TabMLP, make_tab_model
from widemm.models.wide import Wide
from widemm.models.widedeep import WideDeep

__all__ = [
    "FUSIONS",
    "MLP",
    "TAB_MODELS",
    "ConcatFusion",
    "Encoder",
    "FTTransformer",
    "Fusion",
    "TabMLP",
    "Wide",
    "WideDeep",
    "make_fusion",
    "make_tab_model",
]
