"""Text encoders: pretrained Hugging Face transformers, and a light bag of words."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, Literal

import torch
from torch import Tensor, nn

from widemm.models.layers import BackboneEncoder, Encoder
from widemm.models.registry import resolve
from widemm.preprocessing.text import local_model_path


def trim(x: Mapping[str, Tensor]) -> tuple[Tensor, Tensor]:
    """Cut the batch's ids and mask to its longest text: padding costs nothing.

    Not while exporting (``torch.export``, ONNX): the length depends on the data,
    and the padded rows give the same result, masked.
    """
    if torch.compiler.is_exporting():
        return x["input_ids"], x["attention_mask"]
    length = max(int(x["attention_mask"].sum(1).max()), 1)
    return x["input_ids"][:, :length], x["attention_mask"][:, :length]


def segments(states: Tensor, mask: Tensor, n: int) -> tuple[Tensor, Tensor]:
    """Mean token states over at most ``n`` consecutive segments of each text.

    A text of ``length`` tokens splits into ``min(n, length)`` runs of nearly
    equal size (a short text keeps one token per segment). Returns the
    (B, n, d) segment means and their (B, n) bool mask.
    """
    length = mask.sum(1, keepdim=True).clamp(min=1)  # (B, 1)
    position = mask.cumsum(1) - 1  # index among the valid tokens
    segment = position * torch.clamp(length, max=n) // length  # (B, L)
    weights = nn.functional.one_hot(segment.clamp(min=0), n).to(states.dtype)
    weights = weights * mask.unsqueeze(-1).to(states.dtype)  # (B, L, n)
    sums = torch.einsum("bln,bld->bnd", weights, states)
    counts = weights.sum(1)  # (B, n)
    return sums / counts.clamp(min=1).unsqueeze(-1), counts > 0


class HFTextEncoder(BackboneEncoder):
    """Any ``transformers.AutoModel`` backbone, pooled to one vector per text.

    Parameters
    ----------
    model_name : str
        Hub name or local folder (``from_pretrained``).
    pooling : {"mean", "cls"}
        Mean of the token states under the attention mask, or the first token's.
    pool_layers : int
        Pool each of the last ``pool_layers`` layers and concatenate the results:
        lower layers keep more of the words themselves, which helps a frozen
        backbone (``output_dim`` = hidden size * pool_layers; frozen MiniLM on the
        reviews data: ROC AUC 0.933 with 1 layer, 0.951 with 4).
    freeze : bool
        Freeze the backbone. A frozen backbone stays in eval mode while the rest of
        the model trains (no dropout), so its outputs can be cached.
    unfreeze_top_n : int
        With ``freeze=True``, train the top N transformer layers all the same.
    lr_scale : float
        The backbone's learning rate is the Trainer's times this.
    pretrained : bool
        Load the pretrained weights; False builds the architecture only, from
        ``config`` when given (nothing is then read from ``model_name``).
    config : dict, optional
        The backbone's configuration (``PretrainedConfig.to_dict()``), as a saved
        model keeps it so that it loads where ``model_name`` does not exist.
    n_tokens : int
        Segments of :meth:`tokens` (for ``fusion="cross_attention"``).

    Attributes
    ----------
    output_dim : int
        The backbone's hidden size.
    bf16_safe : bool
        True: the feature cache may encode with a bf16 copy (MiniLM: cosine
        0.9999 to float32, reviews' ROC AUC unchanged). MobileNetV2's features
        lost 0.01 accuracy that way, so image encoders stay float32.
    """

    bf16_safe = True

    def __init__(
        self,
        model_name: str,
        *,
        pooling: Literal["mean", "cls"] = "mean",
        pool_layers: int = 4,
        freeze: bool = True,
        unfreeze_top_n: int = 0,
        lr_scale: float = 0.1,
        pretrained: bool = True,
        config: Mapping[str, Any] | None = None,
        n_tokens: int = 8,
    ) -> None:
        from transformers import AutoModel

        super().__init__()
        if pooling not in ("mean", "cls"):
            raise ValueError(f"pooling must be 'mean' or 'cls', got {pooling!r}.")
        with _quiet_transformers():
            if pretrained:
                self.backbone = AutoModel.from_pretrained(local_model_path(model_name))
            else:  # architecture only: the caller loads the weights
                config = backbone_config(model_name, config)
                self.backbone = AutoModel.from_config(config)
        hf_config: Any = self.backbone.config
        if isinstance(getattr(self.backbone, "pooler", None), nn.Module):
            self.backbone.pooler = None  # type: ignore[assignment] # unused (we pool ourselves): never trains
        self.pooling, self.pool_layers = pooling, pool_layers
        self.n_tokens = n_tokens
        self.output_dim = int(hf_config.hidden_size) * pool_layers
        layers = _layers(self.backbone, hf_config.num_hidden_layers)
        self.set_trainable(freeze, layers, unfreeze_top_n, lr_scale)

    def token_embeddings(self) -> nn.Module:
        """Return the layer whose output holds one vector per token."""
        return self.backbone.get_input_embeddings()  # type: ignore[operator]

    def states(self, x: Mapping[str, Tensor]) -> tuple[Tensor, Tensor]:
        """Token states (B, L, output_dim) of the pooled layers, and the mask."""
        ids, mask = trim(x)
        many = self.pool_layers > 1
        out = self.backbone(
            input_ids=ids, attention_mask=mask, output_hidden_states=many
        )
        layers = (
            out.hidden_states[-self.pool_layers :] if many else [out.last_hidden_state]
        )
        return torch.cat(layers, dim=-1), mask

    def tokens(self, x: Mapping[str, Tensor]) -> tuple[Tensor, Tensor]:
        """Return the means of ``n_tokens`` segments of each text's token states."""
        return segments(*self.states(x), self.n_tokens)

    def forward(self, x: Mapping[str, Tensor]) -> Tensor:
        """x: input_ids, attention_mask (B, L) -> (B, output_dim)."""
        states, mask = self.states(x)
        if self.pooling == "cls":
            return states[:, 0]
        weights = mask.unsqueeze(-1).to(states.dtype)
        return (states * weights).sum(1) / weights.sum(1).clamp(min=1.0)


@contextmanager
def _quiet_transformers() -> Iterator[None]:
    """Silence transformers' own loading bars (widemm reports its own progress)."""
    from transformers.utils import logging as hf_logging

    shown = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if shown:
            hf_logging.enable_progress_bar()


def backbone_config(name: str, config: Mapping[str, Any] | None = None) -> Any:
    """Return model ``name``'s ``PretrainedConfig``, or rebuild it from ``config``."""
    from transformers import AutoConfig

    if config is not None:
        return AutoConfig.for_model(**config)
    try:
        return AutoConfig.from_pretrained(local_model_path(name))
    except OSError as err:
        raise OSError(
            f"Cannot read the configuration of text model {name!r}: {err}"
        ) from err


def _layers(backbone: nn.Module, n: int) -> nn.ModuleList:
    """Return the backbone's stack of ``n`` transformer layers (BERT, RoBERTa, ...)."""
    for module in backbone.modules():
        if isinstance(module, nn.ModuleList) and len(module) == n:
            return module
    raise ValueError(f"Cannot find the {n} layers of {type(backbone).__name__}.")


class BagEncoder(Encoder):
    """Light text encoder trained from scratch: mean word embedding, then a layer.

    Parameters
    ----------
    vocab_size : int
        Number of token ids (``TextPreprocessor.vocab_size_``).
    embed_dim : int
        Word embedding size and ``output_dim``.
    lr_scale : float
        Learning rate relative to the Trainer's: sparse word embeddings each get
        few updates, so they learn faster at a higher rate.
    n_tokens : int
        Segments of :meth:`tokens` (for ``fusion="cross_attention"``).
    """

    def __init__(
        self,
        vocab_size: int,
        *,
        embed_dim: int = 64,
        lr_scale: float = 10.0,
        n_tokens: int = 8,
    ) -> None:
        super().__init__()
        self.lr_scale, self.n_tokens = lr_scale, n_tokens
        self.embedding = nn.Embedding(vocab_size, embed_dim)
        self.out = nn.Sequential(nn.Linear(embed_dim, embed_dim), nn.ReLU())
        self.output_dim = embed_dim

    def forward(self, x: Mapping[str, Tensor]) -> Tensor:
        """x: input_ids, attention_mask (B, L) -> (B, embed_dim)."""
        ids, mask = trim(x)
        weights = mask.unsqueeze(-1).to(torch.float32)
        summed = (self.embedding(ids) * weights).sum(1)
        return self.out(summed / weights.sum(1).clamp(min=1.0))

    def tokens(self, x: Mapping[str, Tensor]) -> tuple[Tensor, Tensor]:
        """Return the layer over the mean word embedding of ``n_tokens`` segments."""
        ids, mask = trim(x)
        means, present = segments(self.embedding(ids), mask, self.n_tokens)
        return self.out(means), present

    def token_embeddings(self) -> nn.Module:
        """Return the layer whose output holds one vector per token."""
        return self.embedding


TEXT_MODELS: dict[str, Callable[..., Encoder]] = {"bag": BagEncoder}


def pretrained_text_name(spec: str | Callable[..., Encoder]) -> str | None:
    """Return the Hugging Face model (name or folder) a ``text_model`` names, if any.

    ``"bag"`` (or any registered name) and callables learn their vocabulary from
    the training text: None.
    """
    return spec if isinstance(spec, str) and spec not in TEXT_MODELS else None


def make_text_model(
    spec: str | Callable[..., Encoder],
    vocab_size: int,
    pretrained: bool = True,
    **params: Any,
) -> Encoder:
    """Build a text encoder from a ``text_model`` spec.

    ``"bag"`` -> ``BagEncoder(vocab_size, **params)``; any other name or folder ->
    ``HFTextEncoder(name, pretrained=pretrained, **params)``; a callable is called
    as ``spec(vocab_size, **params)`` (``vocab_size`` of the learned vocabulary).
    """
    name = pretrained_text_name(spec)
    if name is not None:
        return HFTextEncoder(name, pretrained=pretrained, **params)
    return resolve(spec, TEXT_MODELS, "text_model")(vocab_size, **params)
