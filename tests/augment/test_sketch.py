import numpy as np
import pytest
from PIL import Image

from keras_scft.augment.backend import active_backend, backend_uniform
from keras_scft.augment.sketch import XDoGRanges, gaussian_blur_per_channel, gaussian_taps, sample_xdog_params, xdog_sketch

pytestmark = pytest.mark.multi_backend


def _params(n, **fixed):
    values = dict(sigma=0.4, k=4.5, p=19.0, eps=0.01, phi=1e9)
    values.update(fixed)
    return {k: np.full((n,), v, "float32") for k, v in values.items()}


def _real_images(sample_dir, n=4):
    paths = sorted((sample_dir / "color").glob("*.png"))[:n]
    assert paths, f"no sample images in {sample_dir}"
    return np.stack([np.asarray(Image.open(p).convert("RGB"), "float32") / 127.5 - 1 for p in paths])


def test_flat_image_has_no_lines():
    B = active_backend()
    images = np.full((2, 32, 32, 3), 0.3, "float32")
    out = np.asarray(xdog_sketch(B, images, _params(2), radius=7))
    np.testing.assert_array_equal(out, 1.0)


def test_real_image_gives_dark_lines_on_edges(sample_dir):
    B = active_backend()
    images = _real_images(sample_dir)
    out = np.asarray(xdog_sketch(B, images, _params(len(images)), radius=7))[..., 0]
    assert out.min() >= -1 and out.max() <= 1
    ink = out < 0
    assert 0.01 < ink.mean() < 0.35  # mostly white paper with some lines
    gray = images.mean(-1)
    gy, gx = np.gradient(gray, axis=(1, 2))
    edge = np.hypot(gx, gy)
    # ink sits where the image has edges (or is dark): edge strength at ink >> elsewhere
    near_ink = np.zeros_like(ink)
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            near_ink |= np.roll(ink, (dy, dx), axis=(1, 2))
    assert edge[near_ink].mean() > 5 * edge[~near_ink].mean()


def test_gaussian_blur_matches_scipy():
    from scipy.ndimage import gaussian_filter

    B = active_backend()
    rng = np.random.default_rng(0)
    images = rng.uniform(0, 1, (2, 24, 20, 2)).astype("float32")
    sigmas = np.array([[0.5, 1.5], [1.0, 2.0]], "float32")
    taps = np.asarray(gaussian_taps(B, sigmas.reshape(-1), 6)).reshape(2, 2, 13)
    out = np.asarray(gaussian_blur_per_channel(B, images, taps))
    for n in range(2):
        for c in range(2):
            ref = gaussian_filter(images[n, ..., c], sigmas[n, c], mode="mirror", truncate=6 / sigmas[n, c])
            np.testing.assert_allclose(out[n, ..., c], ref, atol=2e-5)


def test_sampled_params_stay_in_range():
    import keras

    B = active_backend()
    ranges = XDoGRanges(sigma=(0.2, 0.6), p=(10.0, 30.0))
    params = sample_xdog_params(backend_uniform(B, keras.random.SeedGenerator(0)), 64, ranges)
    sigma = np.asarray(params["sigma"])
    assert sigma.shape == (64,) and 0.2 <= sigma.min() and sigma.max() <= 0.6 and sigma.std() > 0.05
    assert np.all(np.asarray(params["k"]) == 4.5)
    assert ranges.kernel_radius() == int(np.ceil(3 * 0.6 * 4.5))
