import numpy as np
import pytest

from keras_scft.augment.backend import active_backend
from keras_scft.augment import tps
from keras_scft.augment.sampling import bilinear_sample, pixel_centers

pytestmark = pytest.mark.multi_backend


def _np(x):
    return np.asarray(x)


def _image(rng, n=2, h=32, w=48, c=3):
    return rng.uniform(-1, 1, (n, h, w, c)).astype("float32")


@pytest.mark.parametrize("field_stride", [1, 4])
def test_identity_tps_returns_input(field_stride):
    B = active_backend()
    images = _image(np.random.default_rng(0))
    dst = np.broadcast_to(_np(tps.control_grid(B, 4))[None], (2, 16, 2)).copy()
    coef = tps.fit_tps(B, dst, tps.control_grid(B, 4))
    out = _np(tps.tps_warp(B, images, dst, coef, field_stride=field_stride))
    np.testing.assert_allclose(out, images, atol=1e-4)


def test_fit_interpolates_control_points():
    B = active_backend()
    rng = np.random.default_rng(1)
    src = _np(tps.control_grid(B, 5))
    dst = (src[None] + rng.uniform(-0.15, 0.15, (3, 25, 2))).astype("float32")
    coef = tps.fit_tps(B, dst, src)
    np.testing.assert_allclose(_np(tps.tps_transform(B, dst, dst, coef)), np.broadcast_to(src, (3, 25, 2)), atol=1e-4)


def test_translation_moves_a_pixel_where_the_math_says():
    # dst = src + t: content at src appears at src + t, i.e. shifted right 4 px and down 2 px.
    B = active_backend()
    h = w = 32
    images = -np.ones((1, h, w, 1), "float32")
    images[0, 10, 12, 0] = 1.0
    src = _np(tps.control_grid(B, 3))
    shift = np.array([4 * 2.0 / w, 2 * 2.0 / h], "float32")
    dst = (src + shift)[None]
    coef = tps.fit_tps(B, dst, src)
    out = _np(tps.tps_warp(B, images, dst, coef, fill_value=-1.0))
    assert np.unravel_index(np.argmax(out[0, ..., 0]), (h, w)) == (12, 16)
    assert out[0, 12, 16, 0] == pytest.approx(1.0, abs=1e-4)


def test_coarse_field_is_close_to_exact():
    B = active_backend()
    rng = np.random.default_rng(2)
    src = _np(tps.control_grid(B, 5))
    dst = (src[None] + rng.uniform(-0.1, 0.1, (2, 25, 2))).astype("float32")
    coef = tps.fit_tps(B, dst, src)
    exact = _np(tps.tps_source_field(B, 128, 128, dst, coef, 1))
    coarse = _np(tps.tps_source_field(B, 128, 128, dst, coef, 4))
    assert np.max(np.abs(exact - coarse)) * 64 < 0.5  # in pixels


def test_bilinear_sample_constant_fill_and_exact_pixels():
    B = active_backend()
    images = _image(np.random.default_rng(3), n=1, h=8, w=8)
    centers = _np(pixel_centers(B, 8, 8))[None]
    np.testing.assert_allclose(_np(bilinear_sample(B, images, centers)), images.reshape(1, 64, 3), atol=1e-6)
    far = np.array([[[3.0, 0.0], [0.0, -3.0]]], "float32")
    np.testing.assert_allclose(_np(bilinear_sample(B, images, far, fill_value=0.25)), 0.25)
    nearest = _np(bilinear_sample(B, images, far, fill_mode="nearest"))
    # x=3 clamps to the last column; y=0 lies halfway between rows 3 and 4
    np.testing.assert_allclose(nearest[0, 0], 0.5 * (images[0, 3, 7] + images[0, 4, 7]), atol=1e-6)


def _reference_bilinear(images, coords, fill_mode, fill_value):
    """Per-point bilinear sampling written the plain way: out-of-image neighbours read the
    fill value (constant) or the clamped pixel coordinates are used (nearest)."""
    n, h, w, _ = images.shape
    out = np.zeros(coords.shape[:2] + images.shape[-1:], np.float64)
    for b in range(n):
        for p, (cx, cy) in enumerate(coords[b]):
            x, y = (cx + 1) * w / 2 - 0.5, (cy + 1) * h / 2 - 0.5
            if fill_mode == "nearest":
                x, y = min(max(x, 0.0), w - 1.0), min(max(y, 0.0), h - 1.0)
            x0, y0 = int(np.floor(x)), int(np.floor(y))
            for dy, wy in ((0, 1 - (y - y0)), (1, y - y0)):
                for dx, wx in ((0, 1 - (x - x0)), (1, x - x0)):
                    r, c = y0 + dy, x0 + dx
                    if fill_mode == "nearest":
                        value = images[b, min(r, h - 1), min(c, w - 1)]
                    else:
                        value = images[b, r, c] if 0 <= r < h and 0 <= c < w else fill_value
                    out[b, p] += wy * wx * value
    return out


@pytest.mark.parametrize("fill_mode", ["constant", "nearest"])
def test_bilinear_sample_matches_the_plain_definition(fill_mode):
    """Random points inside, on the border band and far outside (the sampler clamps into a
    padded image instead of masking: this checks it gives the same values everywhere)."""
    B = active_backend()
    rng = np.random.default_rng(4)
    images = _image(rng, n=2, h=6, w=10)
    coords = rng.uniform(-1.6, 1.6, (2, 400, 2)).astype("float32")
    coords[:, :8] = [[-1.0, -1.0], [1.0, 1.0], [1.0, -1.0], [-1.0, 1.0], [0.9, 1.0], [1.0, 0.95], [-1.05, 0], [0, 1.1]]
    out = _np(bilinear_sample(B, images, coords, fill_mode=fill_mode, fill_value=0.25))
    np.testing.assert_allclose(out, _reference_bilinear(images, coords, fill_mode, 0.25), atol=2e-6)
