"""Reading, resizing and writing single images as uint8 numpy arrays.

Every loader in ``keras_scft.data`` goes through :func:`read_image`, so the conventions live
here: color images are uint8 RGB ``[H, W, 3]``; line art / sketches are uint8 ``[H, W, 1]``
with a white background (255) and dark lines. Transparent pixels are composited on white,
16-bit images are scaled (not clipped) to 8 bits, and EXIF orientation is applied.
"""

from __future__ import annotations

import io
import os
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp", ".bmp")

_MODES = ("rgb", "gray")
PARTIAL_SUFFIX = ".partial"


class UnreadableImageError(ValueError):
    """An image file exists but cannot be decoded (corrupt, truncated or not an image)."""

    def __init__(self, path: str | os.PathLike, reason: str):
        self.path = Path(path)
        self.reason = reason
        super().__init__(f"cannot read image {self.path}: {reason}")


def is_image_file(path: str | os.PathLike) -> bool:
    """Whether ``path`` has one of :data:`IMAGE_EXTENSIONS` (case-insensitive)."""
    return Path(path).suffix.lower() in IMAGE_EXTENSIONS


def check_image_header(path: str | os.PathLike) -> tuple[int, int]:
    """Parse only the header of an image file and return its ``(width, height)``.

    Cheap (no pixel decoding); catches files that are not images at all. Truncated pixel
    data is only found by :func:`read_image`.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        UnreadableImageError: the header cannot be parsed.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"image file not found: {path}")
    try:
        with Image.open(path) as image:
            return image.size
    except Exception as error:  # Pillow raises many types for malformed input
        raise UnreadableImageError(path, _describe(error)) from error


def read_image(path: str | os.PathLike, mode: str = "rgb") -> np.ndarray:
    """Read an image file (png/jpg/jpeg/webp/bmp) as a uint8 array.

    Args:
        path: the image file.
        mode: ``"rgb"`` returns uint8 ``[H, W, 3]``; ``"gray"`` returns uint8 ``[H, W, 1]``
            (ITU-R 601-2 luma). Both in [0, 255].

    Alpha (RGBA, LA, palette transparency) is composited on white; 16-bit images are scaled
    to 8 bits (65535 -> 255); EXIF orientation is applied.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        UnreadableImageError: the file is corrupt, truncated or not an image.
    """
    if mode not in _MODES:
        raise ValueError(f"mode must be one of {_MODES}, got {mode!r}")
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"image file not found: {path}")
    try:
        with Image.open(path) as image:
            image.load()
            image = ImageOps.exif_transpose(image)
            rgb_or_gray = _to_8bit_on_white(image)
    except Exception as error:  # Pillow raises many types for malformed input
        raise UnreadableImageError(path, _describe(error)) from error
    if mode == "gray":
        if rgb_or_gray.ndim == 3:
            rgb_or_gray = np.array(Image.fromarray(rgb_or_gray, "RGB").convert("L"))
        return rgb_or_gray[..., None]
    if rgb_or_gray.ndim == 2:
        return np.repeat(rgb_or_gray[..., None], 3, axis=-1)
    return rgb_or_gray


def _to_8bit_on_white(image: Image.Image) -> np.ndarray:
    """uint8 ``[H, W]`` for single-channel images, uint8 ``[H, W, 3]`` otherwise."""
    if image.mode.startswith("I"):  # 16-bit grayscale PNG: I;16, I;16B, or I
        values = np.asarray(image).astype(np.int64)
        return ((np.clip(values, 0, 65535) * 255 + 32767) // 65535).astype(np.uint8)
    if image.mode == "1":
        return np.array(image.convert("L"))
    if image.mode == "L":
        return np.array(image)
    if image.mode == "LA":
        return _composite_on_white(np.asarray(image))
    if image.mode == "P" and "transparency" not in image.info:
        return np.array(image.convert("RGB"))
    if image.mode in ("P", "PA", "RGBA"):
        return _composite_on_white(np.array(image.convert("RGBA")))
    return np.array(image.convert("RGB"))


def _composite_on_white(pixels: np.ndarray) -> np.ndarray:
    """Composite uint8 ``[H, W, C+1]`` (last channel alpha) on white -> uint8 ``[H, W, C]``."""
    alpha = pixels[..., -1:].astype(np.float32) / 255.0
    color = pixels[..., :-1].astype(np.float32)
    out = color * alpha + 255.0 * (1.0 - alpha)
    out = np.rint(out).astype(np.uint8)
    return out[..., 0] if out.shape[-1] == 1 else out


def _describe(error: Exception) -> str:
    return f"{type(error).__name__}: {error}" if str(error) else type(error).__name__


def center_crop_square(image: np.ndarray) -> np.ndarray:
    """Crop the largest centered square from ``image`` uint8 ``[H, W, C]``."""
    height, width = image.shape[:2]
    side = min(height, width)
    top = (height - side) // 2
    left = (width - side) // 2
    return image[top:top + side, left:left + side]


def resize_to(image: np.ndarray, size: int | tuple[int, int]) -> np.ndarray:
    """Resize uint8 ``[H, W, C]`` (C = 1 or 3) to ``size`` with anti-aliasing (Lanczos).

    Args:
        size: ``S`` for ``[S, S]`` or ``(height, width)``.

    Returns:
        uint8 ``[height, width, C]``; ``image`` itself when it already has that size.
    """
    height, width = (size, size) if isinstance(size, int) else size
    if image.shape[:2] == (height, width):
        return image
    channels = image.shape[-1]
    if channels not in (1, 3):
        raise ValueError(f"resize_to expects 1 or 3 channels, got shape {image.shape}")
    pil = Image.fromarray(image[..., 0] if channels == 1 else image)
    resized = np.array(pil.resize((width, height), Image.Resampling.LANCZOS))
    return resized[..., None] if channels == 1 else resized


def resize_square(image: np.ndarray, size: int) -> np.ndarray:
    """Center-crop uint8 ``[H, W, C]`` to a square, then resize it to uint8 ``[size, size, C]``."""
    return resize_to(center_crop_square(image), size)


def write_png(path: str | os.PathLike, image: np.ndarray) -> None:
    """Write uint8 ``[H, W, 1]`` (grayscale) or ``[H, W, 3]`` (RGB) to ``path`` atomically."""
    buffer = io.BytesIO()
    Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image).save(buffer, format="PNG")
    write_atomic(path, buffer.getvalue())


def write_atomic(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temporary file in the same folder and a rename.

    An interrupted write never leaves a half-written ``path``; at worst a hidden
    ``.<name>.*.partial`` file, which :func:`remove_partial_files` cleans up.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=PARTIAL_SUFFIX)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def remove_partial_files(folder: str | os.PathLike) -> int:
    """Delete leftovers of interrupted :func:`write_atomic` calls in ``folder``; return how many."""
    leftovers = list(Path(folder).glob(f".*{PARTIAL_SUFFIX}"))
    for leftover in leftovers:
        leftover.unlink()
    return len(leftovers)
