import cv2
import numpy as np
import pytest
from PIL import Image

from keras_scft.data.io import (
    UnreadableImageError,
    center_crop_square,
    read_image,
    remove_partial_files,
    resize_square,
    resize_to,
    write_png,
)


def test_rgba_is_composited_on_white(tmp_path):
    pixels = np.zeros((1, 3, 4), np.uint8)
    pixels[0, 0] = (0, 0, 0, 0)  # fully transparent black
    pixels[0, 1] = (255, 0, 0, 128)  # half-transparent red
    pixels[0, 2] = (0, 0, 255, 255)  # opaque blue
    Image.fromarray(pixels, "RGBA").save(tmp_path / "a.png")
    image = read_image(tmp_path / "a.png")
    assert image.dtype == np.uint8 and image.shape == (1, 3, 3)
    assert image[0, 0].tolist() == [255, 255, 255]
    assert image[0, 1].tolist() == [255, 127, 127]
    assert image[0, 2].tolist() == [0, 0, 255]


def test_gray_alpha_and_palette_transparency_become_white(tmp_path):
    Image.fromarray(np.array([[[0, 0], [0, 255]]], np.uint8), "LA").save(tmp_path / "la.png")
    assert read_image(tmp_path / "la.png", "gray")[..., 0].tolist() == [[255, 0]]
    palette = Image.new("P", (2, 1))
    palette.putpalette([0, 0, 0, 10, 200, 30] + [0] * 762)
    palette.putpixel((0, 0), 0)
    palette.putpixel((1, 0), 1)
    palette.save(tmp_path / "p.png", transparency=0)
    assert read_image(tmp_path / "p.png").tolist() == [[[255, 255, 255], [10, 200, 30]]]


def test_grayscale_gives_three_equal_channels(tmp_path):
    gray = np.array([[0, 100, 255]], np.uint8)
    Image.fromarray(gray, "L").save(tmp_path / "g.png")
    image = read_image(tmp_path / "g.png", "rgb")
    assert image.shape == (1, 3, 3) and image.flags.writeable
    assert (image == gray[..., None]).all()
    assert read_image(tmp_path / "g.png", "gray").shape == (1, 3, 1)


def test_color_to_gray_mode_uses_luma(tmp_path):
    Image.fromarray(np.array([[[255, 0, 0], [0, 255, 0]]], np.uint8)).save(tmp_path / "c.png")
    assert read_image(tmp_path / "c.png", "gray")[..., 0].tolist() == [[76, 150]]


def test_16bit_png_is_scaled_not_clipped(tmp_path):
    gray16 = np.array([[0, 257, 32768, 65535]], np.uint16)
    cv2.imwrite(str(tmp_path / "g16.png"), gray16)
    assert read_image(tmp_path / "g16.png", "gray")[..., 0].tolist() == [[0, 1, 128, 255]]
    bgr16 = np.zeros((1, 3, 3), np.uint16)
    bgr16[0, :, 2] = [0, 32768, 65535]  # red channel (cv2 writes BGR)
    cv2.imwrite(str(tmp_path / "c16.png"), bgr16)
    assert read_image(tmp_path / "c16.png")[0, :, 0].tolist() == [0, 128, 255]


def test_exif_orientation_is_applied(tmp_path):
    pixels = np.zeros((2, 4, 3), np.uint8)  # 2 rows x 4 columns
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    Image.fromarray(pixels).save(tmp_path / "o.jpg", exif=exif)
    assert read_image(tmp_path / "o.jpg").shape == (4, 2, 3)


@pytest.mark.parametrize("suffix", [".png", ".jpg", ".jpeg", ".webp", ".bmp", ".PNG"])
@pytest.mark.parametrize("shape", [(1, 1), (3, 5)])
def test_tiny_images_in_every_format(tmp_path, suffix, shape):
    pixels = np.full(shape + (3,), 200, np.uint8)
    path = tmp_path / f"tiny{suffix}"
    Image.fromarray(pixels).save(path, format={".jpg": "JPEG", ".jpeg": "JPEG"}.get(
        suffix.lower(), suffix.lower()[1:].upper()))
    image = read_image(path)
    assert image.shape == shape + (3,)
    assert abs(int(image.mean()) - 200) <= 3
    assert resize_square(image, 8).shape == (8, 8, 3)


def test_garbage_bytes_raise_unreadable_error_naming_the_file(tmp_path):
    path = tmp_path / "fake.png"
    path.write_bytes(b"this is not a png at all")
    with pytest.raises(UnreadableImageError, match="fake.png"):
        read_image(path)


def test_truncated_jpeg_raises_unreadable_error(tmp_path):
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (64, 64, 3), np.uint8)).save(tmp_path / "full.jpg")
    data = (tmp_path / "full.jpg").read_bytes()
    (tmp_path / "cut.jpg").write_bytes(data[: len(data) // 2])
    with pytest.raises(UnreadableImageError, match="cut.jpg"):
        read_image(tmp_path / "cut.jpg")


def test_missing_file_and_bad_mode(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.png"):
        read_image(tmp_path / "nope.png")
    Image.new("RGB", (1, 1)).save(tmp_path / "x.png")
    with pytest.raises(ValueError, match="mode"):
        read_image(tmp_path / "x.png", "bgr")


def test_center_crop_keeps_the_middle():
    image = np.zeros((4, 8, 3), np.uint8)
    image[:, 2:6] = 255
    crop = center_crop_square(image)
    assert crop.shape == (4, 4, 3) and (crop == 255).all()


def test_resize_to_handles_gray_and_antialiases():
    checker = (np.indices((64, 64)).sum(0) % 2 * 255).astype(np.uint8)[..., None]
    small = resize_to(checker, 8)
    assert small.shape == (8, 8, 1)
    assert np.abs(small.astype(int) - 127).max() <= 2  # averaged, not sampled
    assert resize_to(np.zeros((1, 1, 3), np.uint8), (3, 5)).shape == (3, 5, 3)


def test_write_png_round_trips_and_leaves_no_partial_files(tmp_path):
    gray = np.arange(12, dtype=np.uint8).reshape(3, 4, 1)
    write_png(tmp_path / "sub" / "g.png", gray)
    assert (read_image(tmp_path / "sub" / "g.png", "gray") == gray).all()
    assert sorted(p.name for p in (tmp_path / "sub").iterdir()) == ["g.png"]
    (tmp_path / "sub" / ".g2.png.abc.partial").write_bytes(b"half")
    assert remove_partial_files(tmp_path / "sub") == 1
    assert sorted(p.name for p in (tmp_path / "sub").iterdir()) == ["g.png"]
