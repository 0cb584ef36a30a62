"""LPIPS (VGG, v0.1): parity with the reference implementations, and metric properties."""

from pathlib import Path

import keras
import numpy as np
import pytest

from keras_scft.layers.vgg_weights import lpips_linear_heads
from keras_scft.metrics.lpips import LPIPS, lpips_distances

REFERENCE = Path(__file__).parent / "fixtures" / "lpips_reference.npz"


@pytest.fixture(scope="module")
def random_lpips():
    keras.utils.set_random_seed(0)
    return LPIPS(weights=None)


def _pairs(n=3, size=16, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.integers(0, 256, (n, size, size, 3), dtype=np.uint8) for _ in range(2))


@pytest.mark.multi_backend
def test_matches_reference_lpips_on_real_and_synthetic_pairs():
    """Distances from richzhang's lpips (torch) made by make_lpips_reference.py; sizes differ per pair."""
    reference = np.load(REFERENCE)
    metric = LPIPS()
    got = [
        lpips_distances(reference[f"pair{k}_0"][None], reference[f"pair{k}_1"][None], metric, progress=False)[0]
        for k in range(len(reference["distances"]))
    ]
    # float32 through a 13-conv net: measured gap ~6e-8
    np.testing.assert_allclose(got, reference["distances"], atol=1e-4, rtol=0)


def test_linear_heads_are_non_negative_per_layer_channel_weights():
    heads = lpips_linear_heads()
    assert [h.shape for h in heads] == [(64,), (128,), (256,), (512,), (512,)]
    assert all(h.dtype == np.float32 and h.min() >= 0 for h in heads)


@pytest.mark.multi_backend
def test_is_a_symmetric_distance_per_pair(random_lpips):
    a, b = _pairs()
    distances = lpips_distances(np.concatenate([a, b, a]), np.concatenate([b, a, a]), random_lpips, 9, False)
    forward, backward, same = distances.reshape(3, 3)
    np.testing.assert_allclose(forward, backward, rtol=1e-5)
    np.testing.assert_allclose(same, 0.0, atol=1e-7)
    assert (forward > 0).all()


@pytest.mark.multi_backend
def test_batched_helper_accepts_uint8_or_signed_floats_and_any_batch_size(random_lpips):
    images_0, images_1 = _pairs(n=4)
    as_uint8 = lpips_distances(images_0, images_1, random_lpips, batch_size=2, progress=False)
    as_float = lpips_distances(images_0 / 127.5 - 1, images_1 / 127.5 - 1, random_lpips, batch_size=4, progress=False)
    assert as_uint8.shape == (4,) and as_uint8.dtype == np.float32
    np.testing.assert_allclose(as_uint8, as_float, rtol=1e-5)  # pairs do not mix across the batch
    with pytest.raises(ValueError, match="same shape"):
        lpips_distances(images_0, images_1[:3], random_lpips)
    with pytest.raises(ValueError, match="at least 16x16"):
        lpips_distances(images_0[:, :15], images_1[:, :15], random_lpips)


@pytest.mark.multi_backend
def test_eager_call_matches_compiled_use_inside_a_model(random_lpips):
    images_0, images_1 = (keras.Input((16, 16, 3)) for _ in range(2))
    model = keras.Model([images_0, images_1], random_lpips(images_0, images_1))
    x0, x1 = (x.astype("float32") / 127.5 - 1 for x in _pairs())
    np.testing.assert_allclose(
        model.predict([x0, x1], verbose=0), keras.ops.convert_to_numpy(random_lpips(x0, x1)), rtol=1e-5
    )


def test_config_round_trip_and_weight_choices(random_lpips):
    assert LPIPS.from_config(random_lpips.get_config()).weights_source is None
    with pytest.raises(ValueError, match='"lpips" or None'):
        LPIPS(weights="imagenet")


def test_stays_float32_under_a_mixed_precision_policy(random_lpips):
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        metric = LPIPS(weights=None)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    metric.set_weights(random_lpips.get_weights())
    x0, x1 = (x.astype("float32") / 127.5 - 1 for x in _pairs())
    got = metric(x0, x1)
    assert keras.backend.standardize_dtype(got.dtype) == "float32"
    np.testing.assert_allclose(keras.ops.convert_to_numpy(got), keras.ops.convert_to_numpy(random_lpips(x0, x1)))
