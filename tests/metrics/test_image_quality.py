"""PSNR / SSIM against scikit-image and tf.image on random and real images."""

import io
from pathlib import Path

import keras
import numpy as np
import pytest

from keras_scft.metrics.image_quality import psnr, ssim

# the photo crops committed for the LPIPS parity test (skimage.data astronaut, coffee, chelsea)
PHOTOS = Path(__file__).parent / "fixtures" / "lpips_reference.npz"


def _real_pairs() -> tuple[np.ndarray, np.ndarray]:
    """uint8 [4, 48, 64, 3]: photo crops vs blurred, JPEG, noisy and unrelated versions."""
    from PIL import Image, ImageFilter

    rng = np.random.default_rng(0)
    photos = np.load(PHOTOS)
    coffee, chelsea, astronaut = photos["pair1_0"], photos["pair2_0"], photos["pair0_0"]
    crops = [coffee[:48, :64], chelsea[:48, :64], coffee[16:, 32:], astronaut[:48]]
    buffer = io.BytesIO()
    Image.fromarray(crops[1]).save(buffer, format="JPEG", quality=15)
    distorted = [
        np.asarray(Image.fromarray(crops[0]).filter(ImageFilter.GaussianBlur(2))),
        np.asarray(Image.open(buffer).convert("RGB")),
        np.clip(crops[2] + rng.normal(0, 25, crops[2].shape), 0, 255).astype(np.uint8),
        crops[0],
    ]
    return np.stack(crops), np.stack(distorted)


def _random_pairs() -> tuple[np.ndarray, np.ndarray]:
    """uint8 [3, 23, 31, 3]: unrelated noise, lightly perturbed noise, shifted intensities."""
    rng = np.random.default_rng(1)
    x = rng.integers(0, 256, (3, 23, 31, 3), dtype=np.uint8)
    y = np.stack([
        rng.integers(0, 256, x.shape[1:], dtype=np.uint8),
        np.clip(x[1] + rng.integers(-20, 21, x.shape[1:]), 0, 255).astype(np.uint8),
        (x[2] // 2 + 60).astype(np.uint8),
    ])
    return x, y


CASES = {"real": _real_pairs, "random": _random_pairs}


def _skimage_scores(x, y, data_range):
    metrics = pytest.importorskip("skimage.metrics")
    ssim_ref = [
        metrics.structural_similarity(
            a, b, gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=data_range, channel_axis=-1
        )
        for a, b in zip(x, y)
    ]
    psnr_ref = [metrics.peak_signal_noise_ratio(a, b, data_range=data_range) for a, b in zip(x, y)]
    return np.array(ssim_ref), np.array(psnr_ref)


@pytest.mark.multi_backend
@pytest.mark.parametrize("case", CASES)
def test_matches_skimage_for_signed_floats_and_uint8(case):
    x, y = CASES[case]()
    xf, yf = x / 127.5 - 1.0, y / 127.5 - 1.0  # float64 [-1, 1]: default data_range 2
    ssim_ref, psnr_ref = _skimage_scores(xf, yf, 2.0)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(ssim(xf, yf)), ssim_ref, atol=1e-4)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(psnr(xf, yf)), psnr_ref, atol=1e-4)
    ssim_ref, psnr_ref = _skimage_scores(x, y, 255)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(ssim(x, y)), ssim_ref, atol=1e-4)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(psnr(x, y)), psnr_ref, atol=1e-4)


@pytest.mark.parametrize("case", CASES)
def test_matches_tf_image(case):
    tf = pytest.importorskip("tensorflow")
    x, y = CASES[case]()
    xf, yf = (tf.constant(v / 127.5 - 1.0, tf.float32) for v in (x, y))
    np.testing.assert_allclose(keras.ops.convert_to_numpy(ssim(xf, yf)), tf.image.ssim(xf, yf, 2.0), atol=1e-4)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(psnr(xf, yf)), tf.image.psnr(xf, yf, 2.0), atol=1e-4)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(ssim(x, y)), tf.image.ssim(x, y, 255), atol=1e-4)


@pytest.mark.multi_backend
def test_identical_images_and_data_range_conventions():
    x, y = _random_pairs()
    np.testing.assert_allclose(keras.ops.convert_to_numpy(ssim(x, x)), 1.0, atol=1e-6)
    assert np.isposinf(keras.ops.convert_to_numpy(psnr(x, x))).all()
    for metric in (ssim, psnr):
        uint8 = keras.ops.convert_to_numpy(metric(x, y))
        explicit = keras.ops.convert_to_numpy(metric(x.astype("float32"), y.astype("float32"), data_range=255))
        unit = keras.ops.convert_to_numpy(metric(x / 255.0, y / 255.0, data_range=1.0))
        np.testing.assert_allclose(uint8, explicit, rtol=1e-5)
        np.testing.assert_allclose(unit, explicit, rtol=1e-4)


def test_input_errors_say_what_is_wrong():
    x, y = _random_pairs()
    with pytest.raises(ValueError, match="same shape"):
        ssim(x, y[:2])
    with pytest.raises(ValueError, match="same shape"):
        psnr(x[0], y[0])
    with pytest.raises(ValueError, match="data_range"):
        psnr(x, y.astype("float32"))
    with pytest.raises(ValueError, match="at least 11x11"):
        ssim(x[:, :10], y[:, :10])


@pytest.mark.multi_backend
def test_runs_compiled_in_a_predict_step():
    class Scores(keras.Model):
        def call(self, pair):
            return keras.ops.stack([ssim(pair[0], pair[1]), psnr(pair[0], pair[1])], axis=-1)

    x, y = (v.astype("float32") / 127.5 - 1.0 for v in _random_pairs())
    compiled = Scores().predict([x, y], verbose=0)
    eager = np.stack([keras.ops.convert_to_numpy(ssim(x, y)), keras.ops.convert_to_numpy(psnr(x, y))], -1)
    np.testing.assert_allclose(compiled, eager, rtol=1e-5)
