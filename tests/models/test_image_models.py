import pytest
import torch

from widemm.models import ImageEncoder, SmallCNN, make_image_model

NAMES = [
    "resnet18",
    "densenet121",
    "vgg11",
    "inception_v3",
    "efficientnet_b0",
    "mobilenet_v2",
    "convnext_tiny",
]


@pytest.mark.parametrize("name", NAMES)
def test_torchvision_backbones_lose_their_classifier(name):
    enc = ImageEncoder(name, weights=None).eval()
    size = 80 if name == "inception_v3" else 64
    with torch.no_grad():
        out = enc({"pixels": torch.randn(2, 3, size, size)})
    assert out.shape == (2, enc.output_dim)
    assert enc.output_dim != 1000
    assert not enc.frozen  # no weights -> trains from scratch


def test_weights_file_loads_frozen_and_unfreezes_last_stages(mobilenet_weights):
    enc = ImageEncoder("mobilenet_v2", weights=mobilenet_weights)
    assert enc.frozen
    assert enc.output_dim == 1280
    enc.train()
    assert not enc.backbone.training  # frozen: batch-norm statistics stay fixed
    partly = ImageEncoder("mobilenet_v2", weights=mobilenet_weights, unfreeze_last_n=2)
    params = partly.named_parameters()
    trainable = {n.split(".")[2] for n, p in params if p.requires_grad}
    assert trainable == {"17", "18"}  # the last two blocks of `features`
    assert not partly.frozen


def test_weights_file_is_loaded_exactly(mobilenet_weights):
    state = torch.load(mobilenet_weights, weights_only=True)
    enc = make_image_model("mobilenet_v2", weights=mobilenet_weights)
    loaded = enc.backbone.state_dict()
    assert len(state) == len(loaded) + 2  # all but the classifier's weight and bias
    for key, value in loaded.items():
        torch.testing.assert_close(value, state[key], rtol=0, atol=0)


def test_small_cnn_and_unknown_names():
    enc = make_image_model("small_cnn")
    assert isinstance(enc, SmallCNN)
    out = enc({"pixels": torch.randn(3, 3, 32, 32)})
    assert out.shape == (3, enc.output_dim)
    with pytest.raises(ValueError, match="Did you mean 'resnet18'"):
        make_image_model("resnet81")
