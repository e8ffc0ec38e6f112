"""Image encoders: torchvision CNNs without their classifier, and a small CNN."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from widemm.models.layers import BackboneEncoder, Encoder
from widemm.models.registry import resolve


def load_backbone(name: str, weights: Any = None) -> nn.Module:
    """Build a torchvision classification model by name, with ``weights`` loaded.

    ``weights``: None (random init), ``"DEFAULT"`` or a weights enum / its name
    (``"IMAGENET1K_V1"``, ``MobileNet_V2_Weights.IMAGENET1K_V1``: torchvision
    downloads or reads ``$TORCH_HOME/hub/checkpoints``), or the path of a local
    state-dict file (read with ``weights_only=True``: no code runs).
    """
    from torchvision import models

    if name not in models.list_models(module=models):
        import difflib

        close = difflib.get_close_matches(name, models.list_models(module=models), n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ValueError(f"Unknown torchvision model {name!r}.{hint}")
    extra = (
        {"aux_logits": False, "init_weights": False} if name == "inception_v3" else {}
    )
    if isinstance(weights, str | Path) and Path(weights).suffix in (
        ".pth",
        ".pt",
        ".bin",
    ):
        model = models.get_model(name, weights=None, **extra)
        state = torch.load(weights, map_location="cpu", weights_only=True)
        state = {k: v for k, v in state.items() if not k.startswith("AuxLogits.")}
        model.load_state_dict(state)
        return model
    return models.get_model(name, weights=weights, **extra)


def _strip_classifier(model: nn.Module) -> int:
    """Replace the model's last Linear layer with Identity; return its input size."""
    parent, attr, last = None, "", None
    for module in model.modules():
        for child_name, child in module.named_children():
            if isinstance(child, nn.Linear):
                parent, attr, last = module, child_name, child
    if last is None or parent is None:
        raise ValueError(f"{type(model).__name__} has no Linear classifier to remove.")
    setattr(parent, attr, nn.Identity())
    return last.in_features


def _stages(model: nn.Module) -> list[nn.Module]:
    """Return the backbone's top-level blocks with parameters, input to output."""
    stages = [m for m in model.children() if any(True for _ in m.parameters())]
    while len(stages) == 1:  # e.g. mobilenet: everything sits in `features`
        stages = [m for m in stages[0].children() if any(True for _ in m.parameters())]
    return stages


class ImageEncoder(BackboneEncoder):
    """A torchvision CNN without its classifier: one feature vector per image.

    Any classification model of ``torchvision.models`` works: ResNet, DenseNet, VGG,
    Inception-v3, EfficientNet, MobileNet, ConvNeXt, ... Its last Linear layer
    becomes ``nn.Identity()``, so the output is the features that layer read.

    Parameters
    ----------
    model_name : str
        A torchvision model name, e.g. ``"resnet18"``, ``"mobilenet_v2"``.
    weights : None, "DEFAULT", weights enum or name, or path to a state-dict file
        See :func:`load_backbone`.
    freeze : bool, optional
        Freeze the backbone; by default when ``weights`` is given. A frozen backbone
        stays in eval mode (batch-norm statistics fixed), so outputs can be cached.
    unfreeze_last_n : int
        With ``freeze``, train the last N stages all the same.
    lr_scale : float
        The backbone's learning rate is the Trainer's times this.
    pretrained : bool
        Load ``weights``; False builds the architecture only (frozen as if the
        weights were loaded), for a caller that sets every weight itself.
    token_grid : int
        :meth:`tokens` pools the last feature map to ``token_grid`` x
        ``token_grid`` cells (for ``fusion="cross_attention"``).
    """

    def __init__(
        self,
        model_name: str,
        *,
        weights: Any = None,
        freeze: bool | None = None,
        unfreeze_last_n: int = 0,
        lr_scale: float = 0.1,
        pretrained: bool = True,
        token_grid: int = 3,
    ) -> None:
        super().__init__()
        self.token_grid = token_grid
        self.backbone = load_backbone(model_name, weights if pretrained else None)
        self.output_dim = _strip_classifier(self.backbone)
        freeze = weights is not None if freeze is None else freeze
        stages = _stages(self.backbone)
        self.set_trainable(freeze, stages, unfreeze_last_n, lr_scale)

    def forward(self, x: Mapping[str, Tensor]) -> Tensor:
        """x["pixels"] (B, 3, S, S) -> (B, output_dim)."""
        return self.backbone(x["pixels"])

    def tokens(self, x: Mapping[str, Tensor]) -> tuple[Tensor, Tensor]:
        """Return the cells of the last feature map with ``output_dim`` channels.

        A model whose classifier changes the size after the feature map (VGG's
        MLP) gives its output as a single token.
        """
        maps: list[Tensor] = []
        hooks = [
            stage.register_forward_hook(lambda _m, _i, out: maps.append(out))
            for stage in self.blocks
        ]
        try:
            out = self.backbone(x["pixels"])
        finally:
            for hook in hooks:
                hook.remove()
        shaped = [m for m in maps if m.dim() == 4 and m.shape[1] == self.output_dim]
        if not shaped:
            return out[:, None], out.new_ones(len(out), 1, dtype=torch.bool)
        return grid_tokens(shaped[-1], self.token_grid)


def grid_tokens(maps: Tensor, grid: int) -> tuple[Tensor, Tensor]:
    """Average-pool (B, C, H, W) feature maps to (B, grid * grid, C) tokens."""
    cells = nn.functional.adaptive_avg_pool2d(maps, grid).flatten(2).transpose(1, 2)
    return cells, torch.ones(cells.shape[:2], dtype=torch.bool, device=maps.device)


class SmallCNN(Encoder):
    """A small CNN trained from scratch, for small images (icons, thumbnails).

    Parameters
    ----------
    channels : tuple of int
        Output channels of each conv block (conv-BN-ReLU, then 2x2 max-pool);
        the last is ``output_dim``.
    token_grid : int
        :meth:`tokens` pools the last feature map to ``token_grid`` x
        ``token_grid`` cells (for ``fusion="cross_attention"``).
    """

    def __init__(
        self, *, channels: tuple[int, ...] = (32, 64, 128), token_grid: int = 3
    ) -> None:
        super().__init__()
        self.token_grid = token_grid
        layers: list[nn.Module] = []
        for c_in, c_out in zip((3, *channels), channels, strict=False):
            layers += [
                nn.Conv2d(c_in, c_out, 3, padding=1, bias=False),
                nn.BatchNorm2d(c_out),
                nn.ReLU(),
                nn.MaxPool2d(2),
            ]
        self.net = nn.Sequential(*layers)
        self.output_dim = channels[-1]

    def forward(self, x: Mapping[str, Tensor]) -> Tensor:
        """x["pixels"] (B, 3, S, S) -> (B, output_dim)."""
        return self.net(x["pixels"]).mean((2, 3))

    def tokens(self, x: Mapping[str, Tensor]) -> tuple[Tensor, Tensor]:
        """Return the cells of the last feature map."""
        return grid_tokens(self.net(x["pixels"]), self.token_grid)


IMAGE_MODELS: dict[str, Callable[..., Encoder]] = {"small_cnn": SmallCNN}


def make_image_model(
    spec: str | Callable[..., Encoder], pretrained: bool = True, **params: Any
) -> Encoder:
    """Build ``"small_cnn"``, a torchvision model (ImageEncoder), or a callable.

    A callable is called as ``spec(**params)``. ``pretrained=False`` skips loading
    a torchvision model's weights (models trained from scratch have none to skip).
    """
    if callable(spec) or spec in IMAGE_MODELS:
        return resolve(spec, IMAGE_MODELS, "image_model")(**params)
    return ImageEncoder(spec, pretrained=pretrained, **params)
