import io

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from tests.conftest import DATA
from widemm import ImagePreprocessor
from widemm.preprocessing.image import to_rgb

EMOJI = DATA / "emoji"


@pytest.fixture(scope="module")
def emoji():
    return pd.read_parquet(EMOJI / "emoji.parquet").head(6)


def test_images_decode_lazily_from_paths_bytes_pil_and_arrays(emoji):
    paths = emoji["image_path"].tolist()
    raw = (EMOJI / paths[1]).read_bytes()
    array = np.asarray(to_rgb(paths[3], str(EMOJI)))
    values = [paths[0], raw, Image.open(EMOJI / paths[2]), array]
    X = pd.DataFrame({"img": values})
    pre = ImagePreprocessor(root=str(EMOJI), image_size=32).fit(X)
    column = pre.transform(X)["img"]
    assert len(column) == 4
    batch = column[torch.tensor([0, 1, 2, 3])]
    assert batch["pixels"].shape == (4, 3, 32, 32)
    assert batch["present"].all()
    same = pre.transform(pd.DataFrame({"img": [paths[1]]}))["img"][torch.tensor([0])]
    torch.testing.assert_close(batch["pixels"][1], same["pixels"][0])  # bytes == path
    assert batch["pixels"].std() > 0.1  # real content, not a blank image


def test_transparency_is_composited_on_white(emoji):
    image = to_rgb(emoji["image_path"].iloc[0], str(EMOJI))
    assert image.mode == "RGB"
    corner = np.asarray(image)[0, 0]
    assert (corner == 255).all()  # emoji corners are transparent -> white


def test_augmentation_changes_pixels_but_not_shapes(emoji):
    X = emoji[["image_path"]]
    pre = ImagePreprocessor(root=str(EMOJI), image_size=32).fit(X)
    column = pre.transform(X)["image_path"]
    plain = column[torch.arange(6)]["pixels"]
    torch.manual_seed(0)
    augmented = column.with_augment(True)[torch.arange(6)]["pixels"]
    assert augmented.shape == plain.shape
    assert not torch.allclose(augmented, plain)
    torch.testing.assert_close(column[torch.arange(6)]["pixels"], plain)  # eval: fixed


@pytest.fixture
def broken(emoji, tmp_path):
    corrupt = tmp_path / "corrupt.png"
    corrupt.write_bytes(b"\x89PNG not really")
    paths = [str(EMOJI / p) for p in emoji["image_path"]]
    missing = str(tmp_path / "missing.png")
    return pd.DataFrame(
        {"img": [paths[0], missing, str(corrupt), None]}, index=[100, 101, 102, 103]
    )


def test_on_error_raise_names_row_label_and_path(broken):
    pre = ImagePreprocessor(image_size=16).fit(broken.drop(index=101))
    column = pre.transform(broken)["img"]
    batch = column[torch.tensor([0, 3])]  # readable; missing (None) is absent
    assert batch["present"].tolist() == [True, False]
    with pytest.raises(
        ValueError, match=r"'img', row 101: cannot read image .*missing\.png"
    ):
        column[torch.tensor([1])]
    with pytest.raises(ValueError, match=r"row 102: cannot read image .*corrupt\.png"):
        column[torch.tensor([2])]
    with pytest.raises(ValueError, match=r"give it a role: cat_cols=\['img'\]"):
        column[torch.tensor([2])]


def test_fit_reports_every_missing_file_before_training(broken):
    both = pd.concat([broken, broken.rename(index=lambda i: i + 10)])
    with pytest.raises(
        FileNotFoundError, match=r"2 image file\(s\) not found.*rows 101: .*, 111: "
    ):
        ImagePreprocessor(image_size=16).fit(both)
    ImagePreprocessor(image_size=16, on_error="mask").fit(both)  # masked: fine


def test_on_error_mask_flags_absent_rows(broken):
    pre = ImagePreprocessor(image_size=16, on_error="mask").fit(broken)
    batch = pre.transform(broken)["img"][torch.arange(4)]
    assert batch["present"].tolist() == [True, False, False, False]
    assert (batch["pixels"][1:] == 0).all()


def test_row_keys_follow_content_for_bytes(emoji):
    raw = (EMOJI / emoji["image_path"].iloc[0]).read_bytes()
    other = io.BytesIO()
    Image.new("RGB", (8, 8), "red").save(other, format="PNG")
    X = pd.DataFrame({"img": [raw, raw, other.getvalue()]})
    keys = ImagePreprocessor().fit(X).transform(X)["img"].row_keys()
    assert keys[0] == keys[1] != keys[2]


def test_auto_image_size_is_the_images_own_size(emoji):
    """72-px drawings train at 80 px (16s, rounded up), not upscaled to 224."""
    pre = ImagePreprocessor(root=str(EMOJI), image_size="auto").fit(
        emoji[["image_path"]]
    )
    assert pre.image_size_ == 80
    batch = pre.transform(emoji[["image_path"]])["image_path"][torch.tensor([0])]
    assert batch["pixels"].shape == (1, 3, 80, 80)
    big = np.zeros((300, 500, 3), dtype=np.uint8)
    tiny = np.zeros((10, 12, 3), dtype=np.uint8)
    sizes = [
        ImagePreprocessor(image_size="auto").fit(pd.DataFrame({"i": [a]})).image_size_
        for a in (big, tiny)
    ]
    assert sizes == [224, 32]  # within 32..224
    none = ImagePreprocessor(image_size="auto", on_error="mask")
    assert none.fit(pd.DataFrame({"i": [None, "absent.png"]})).image_size_ == 224
    for bad in ("big", 0, 64.5):
        with pytest.raises(ValueError, match="image_size must be a positive"):
            ImagePreprocessor(root=str(EMOJI), image_size=bad).fit(
                emoji[["image_path"]]
            )


def test_auto_image_size_is_224_for_a_pretrained_backbone(emoji, mobilenet_weights):
    from widemm import WideDeepClassifier

    X, y = emoji[["image_path", "added_in"]], [0, 1] * 3
    params = dict(image_root=str(EMOJI), max_epochs=1, random_state=0, trees=False)
    small = WideDeepClassifier(**params).fit(X, y)
    assert small.pipeline_.preprocessors_["image"].image_size_ == 80
    pretrained = WideDeepClassifier(
        image_model="mobilenet_v2",
        image_params={"weights": mobilenet_weights},
        **params,
    ).fit(X, y)
    assert pretrained.pipeline_.preprocessors_["image"].image_size_ == 224
