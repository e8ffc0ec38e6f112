"""Image columns: lazy decoding of paths, bytes, PIL images or arrays into tensors."""

from __future__ import annotations

import hashlib
import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal, Self

import numpy as np
import pandas as pd
import torch
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted
from torch import Tensor

from widemm.validation import check_frame, plain

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class ImageColumn:
    """One image column, decoded only when rows are taken (in DataLoader workers).

    ``column[rows]`` returns ``{"pixels": (B, 3, S, S) float32, "present": (B,)
    bool}``; ``column.subset(rows)`` a smaller column, nothing decoded.

    Parameters
    ----------
    values : ndarray of object
        Paths (str or Path), bytes, PIL images or uint8 arrays (H, W) / (H, W, C).
    name : str
        The DataFrame column, for error messages.
    rows : ndarray
        The index label of each value's row, for error messages.
    preprocessor : ImagePreprocessor
        Decoding settings: root, size, normalisation, augmentation, on_error.
    augment : bool
        Apply the training augmentation (random resized crop, flip).
    """

    def __init__(
        self,
        values: np.ndarray,
        name: str,
        rows: np.ndarray,
        preprocessor: ImagePreprocessor,
        augment: bool = False,
    ) -> None:
        self.values, self.name, self.rows = values, name, rows
        self.preprocessor, self.augment = preprocessor, augment
        self._transform = preprocessor.make_transform(augment)

    def __len__(self) -> int:
        return len(self.values)

    def __getitem__(self, rows: Tensor | slice) -> dict[str, Tensor]:
        index = (
            np.arange(len(self))[rows] if isinstance(rows, slice) else np.asarray(rows)
        )
        size = self.preprocessor.image_size_
        pixels = torch.zeros(len(index), 3, size, size)
        present = torch.ones(len(index), dtype=torch.bool)
        for j, i in enumerate(index):
            image = self._load(int(i))
            if image is None:
                present[j] = False
            else:
                pixels[j] = self._transform(image)
        return {"pixels": pixels, "present": present}

    def subset(self, rows: Tensor) -> ImageColumn:
        index = np.asarray(rows)
        return ImageColumn(
            self.values[index],
            self.name,
            self.rows[index],
            self.preprocessor,
            self.augment,
        )

    def with_augment(self, augment: bool) -> ImageColumn:
        """Return the same column, decoded with or without training augmentation."""
        return ImageColumn(
            self.values, self.name, self.rows, self.preprocessor, augment
        )

    def row_keys(self) -> list[bytes]:
        """Return a key per row: its path, or a digest of its content."""
        return [_key(v, self.preprocessor.root) for v in self.values]

    def _load(self, i: int) -> Any:
        """Decode value i to an RGB image; None if missing, or unreadable and masked.

        A missing value (None, NaN) is an absent image, as missing text is.
        """
        value = self.values[i]
        if _is_missing(value):
            return None
        try:
            return to_rgb(value, self.preprocessor.root)
        except Exception as err:
            if self.preprocessor.on_error == "mask":
                return None
            raise ValueError(
                f"Column {self.name!r}, row {plain(self.rows[i])}: cannot read "
                f"image {_describe(value)}: {err}. Fix or drop the row, or pass "
                "on_error='mask' to treat unreadable images as absent. If the "
                f"column holds no images, give it a role: cat_cols=[{self.name!r}] "
                f"or ignore_cols=[{self.name!r}]."
            ) from err


def to_rgb(value: Any, root: str | None = None) -> Any:
    """Open a path, bytes, PIL image or array as an RGB PIL image.

    Transparency is composited on white (palette PNGs such as emoji).
    """
    from PIL import Image

    if _is_missing(value):
        raise ValueError("the value is missing")
    if isinstance(value, str | Path | bytes | bytearray):
        image: Image.Image = _opened(value, root)
    elif isinstance(value, np.ndarray):
        if value.dtype != np.uint8:
            raise TypeError(f"arrays must be uint8, got {value.dtype}")
        image = Image.fromarray(value)
    elif isinstance(value, Image.Image):
        image = value
    else:
        raise TypeError(f"unsupported image value of type {type(value).__name__}")
    image.load()
    if image.mode in ("RGBA", "LA", "P") or "transparency" in image.info:
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return image.convert("RGB")


def _longer_side(value: Any, root: str | None) -> int | None:
    """Return an image's longer side from its header; None if it is no image."""
    from PIL import Image

    if isinstance(value, np.ndarray):
        return max(value.shape[:2]) if value.ndim >= 2 else None
    if isinstance(value, Image.Image):
        return max(value.size)
    if not isinstance(value, str | Path | bytes | bytearray):
        return None
    try:
        with _opened(value, root) as image:
            return max(image.size)
    except (OSError, ValueError):
        return None


def _opened(value: str | Path | bytes | bytearray, root: str | None) -> Any:
    """Open a file path or file bytes as a PIL image (its header read, not decoded)."""
    from PIL import Image

    if isinstance(value, str | Path):
        return Image.open(_resolve(value, root))
    return Image.open(io.BytesIO(value))


def _is_missing(value: Any) -> bool:
    return (
        value is None
        or value is pd.NA
        or (isinstance(value, float) and np.isnan(value))
    )


def _resolve(value: str | Path, root: str | None) -> Path:
    path = Path(value)
    return Path(root) / path if root is not None and not path.is_absolute() else path


def _key(value: Any, root: str | None) -> bytes:
    """Return a key that changes with the image.

    A file's path, size and modification time (overwritten in place, it gets a
    new key), or a digest of in-memory content.
    """
    if _is_missing(value):
        return b"<missing>"
    if isinstance(value, str | Path):
        try:
            stat = _resolve(value, root).stat()
        except OSError:
            return f"{root}|{value}|unreadable".encode()
        return f"{root}|{value}|{stat.st_size}|{stat.st_mtime_ns}".encode()
    if isinstance(value, np.ndarray):
        data = value.tobytes()
    elif isinstance(value, bytes | bytearray):
        data = bytes(value)
    elif hasattr(value, "tobytes"):
        data = value.tobytes()
    else:
        data = repr(value).encode()
    return hashlib.blake2b(data, digest_size=16).digest()


def _describe(value: Any) -> str:
    if isinstance(value, str | Path):
        return repr(str(value))
    return f"<{type(value).__name__}>"


class ImagePreprocessor(TransformerMixin, BaseEstimator):
    """Turn image columns into lazily decoded ImageColumns.

    Nothing is decoded in ``transform``: an ImageColumn decodes the rows a batch
    asks for, so a data set larger than memory works, and DataLoader workers do
    the decoding in parallel.

    Parameters
    ----------
    cols : list of str, optional
        Image columns; by default every column of X.
    root : str, optional
        Folder that relative paths are resolved against.
    image_size : int or "auto"
        Side of the square crop fed to the network; ``"auto"``: the fit images'
        median longer side (of up to 64 of them), rounded up to a multiple of 16,
        from 32 to 224.
    resize_ratio : float
        Evaluation resizes the shorter side to ``image_size * resize_ratio``, then
        center-crops ``image_size`` (torchvision's ImageNet recipe: 256 -> 224).
    mean, std : tuple of float
        Normalisation; the defaults match torchvision's ImageNet weights.
    on_error : {"raise", "mask"}
        A missing or unreadable image raises an error naming the column, row and
        path, or ("mask") makes the row train and predict as image-absent.

    Attributes
    ----------
    cols_ : list of str
        The image columns.
    image_size_ : int
        The side of the crop.
    """

    def __init__(
        self,
        cols: Sequence[str] | None = None,
        *,
        root: str | None = None,
        image_size: int | Literal["auto"] = 224,
        resize_ratio: float = 256 / 224,
        mean: Sequence[float] = IMAGENET_MEAN,
        std: Sequence[float] = IMAGENET_STD,
        on_error: Literal["raise", "mask"] = "raise",
    ) -> None:
        self.cols = cols
        self.root = root
        self.image_size = image_size
        self.resize_ratio = resize_ratio
        self.mean = mean
        self.std = std
        self.on_error = on_error

    def fit(self, X: Any, y: Any = None) -> Self:
        if self.on_error not in ("raise", "mask"):
            raise ValueError(
                f"on_error must be 'raise' or 'mask', got {self.on_error!r}."
            )
        X = check_frame(self, X, reset=True)
        self.cols_ = [str(c) for c in (X.columns if self.cols is None else self.cols)]
        if self.on_error == "raise":
            for col in self.cols_:
                self._check_files(X[col])
        size = self.image_size
        if size == "auto":
            self.image_size_ = self._native_size(X)
        elif isinstance(size, int | np.integer) and size > 0:
            self.image_size_ = int(size)
        else:
            raise ValueError(
                f"image_size must be a positive number of pixels or 'auto', got "
                f"{size!r}."
            )
        return self

    def _native_size(self, X: pd.DataFrame) -> int:
        """Return the crop side that fits the fit images.

        Their median longer side (of up to 64, read from the headers), rounded
        up to a multiple of 16, from 32 to 224; 224 when none can be read.
        """
        values = [v for c in self.cols_ for v in X[c].iloc[:64]]
        sides = [s for s in (_longer_side(v, self.root) for v in values) if s]
        if not sides:
            return 224
        side = 16 * int(np.ceil(np.median(sides) / 16))
        return int(np.clip(side, 32, 224))

    def _check_files(self, s: pd.Series) -> None:
        """Raise one error listing every row whose image file does not exist."""
        paths = s[s.map(lambda v: isinstance(v, str | Path))]
        exists = paths.map(lambda v: _resolve(v, self.root).is_file())
        if exists.all():
            return
        bad = paths[~exists]
        rows = ", ".join(f"{plain(k)}: {v!r}" for k, v in bad.iloc[:5].items())
        raise FileNotFoundError(
            f"Column {s.name!r}: {len(bad)} image file(s) not found (root "
            f"{self.root!r}), rows {rows}{', ...' if len(bad) > 5 else ''}. Fix the "
            "paths or image_root, drop those rows, or pass on_error='mask' to treat "
            "them as absent images."
        )

    def transform(self, X: Any) -> dict[str, ImageColumn]:
        """Return an ImageColumn per column (nothing decoded yet)."""
        check_is_fitted(self)
        return self.transform_frame(check_frame(self, X, reset=False))

    def transform_frame(self, X: pd.DataFrame) -> dict[str, ImageColumn]:
        """Transform a DataFrame already checked against the fit columns (no checks)."""
        labels = X.index.to_numpy()
        return {
            c: ImageColumn(X[c].to_numpy(dtype=object), c, labels, self)
            for c in self.cols_
        }

    def make_transform(self, augment: bool) -> Any:
        """Return the ``transforms.v2`` pipeline from a PIL image to a tensor."""
        from torchvision.transforms import v2

        size = self.image_size_
        if augment:
            geometry = [
                v2.RandomResizedCrop(size, scale=(0.6, 1.0)),
                v2.RandomHorizontalFlip(),
            ]
        else:
            geometry = [v2.Resize(round(size * self.resize_ratio)), v2.CenterCrop(size)]
        return v2.Compose(
            [
                v2.ToImage(),
                *geometry,
                v2.ToDtype(torch.float32, scale=True),
                v2.Normalize(list(self.mean), list(self.std)),
            ]
        )

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        tags.input_tags.two_d_array = False
        return tags
