import os

import keras
import numpy as np
import pytest

from keras_scft.augment.backend import DynamicBackend
from keras_scft.augment.example import SelfAugment
from tests.helpers import requires_backend

KEYS = {"sketch", "reference", "target", "correspondence", "valid", "negative"}


def _images(n=2, h=64, w=96, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n, h, w, 3)).astype("uint8")


def _np(out):
    return {k: np.asarray(v) for k, v in out.items()}


@pytest.mark.multi_backend
def test_shapes_ranges_and_dtypes():
    out = _np(SelfAugment(seed=0)(_images()))
    assert set(out) == KEYS
    assert out["sketch"].shape == (2, 64, 96, 1)
    assert out["reference"].shape == out["target"].shape == (2, 64, 96, 3)
    for key in ("correspondence", "valid", "negative"):
        assert out[key].shape == (2, 4 * 6)
    for key in ("sketch", "reference", "target"):
        assert out[key].min() >= -1 and out[key].max() <= 1
    assert out["correspondence"].dtype == np.int32 and out["negative"].dtype == np.int32
    assert np.all(out["negative"] != out["correspondence"])


@pytest.mark.multi_backend
def test_same_seed_same_example_and_different_seed_differs():
    images = _images()
    a, b, c = (_np(SelfAugment(seed=s)(images)) for s in (7, 7, 8))
    for key in KEYS:
        np.testing.assert_array_equal(a[key], b[key])
    assert not np.allclose(a["reference"], c["reference"])
    # the generator advances: a second call draws new parameters
    layer = SelfAugment(seed=7)
    first, second = _np(layer(images)), _np(layer(images))
    assert not np.allclose(first["reference"], second["reference"])


@pytest.mark.multi_backend
def test_given_sketch_is_used():
    images = _images()
    sketch = np.full((2, 64, 96, 1), 255, "uint8")
    sketch[:, 10:20, 10:20] = 0
    out = _np(SelfAugment(seed=0)({"image": images, "sketch": sketch}))
    np.testing.assert_array_equal(out["sketch"], sketch / 127.5 - 1)
    out = _np(SelfAugment(seed=0, given_sketch_prob=0.0)({"image": images, "sketch": sketch}))
    assert not np.array_equal(out["sketch"], sketch / 127.5 - 1)


@pytest.mark.multi_backend
def test_identity_settings_reproduce_the_image():
    layer = SelfAugment(color_shift=0.0, tps_jitter=0.0, tps_scale=(1, 1), tps_rotation=0, tps_translation=0, seed=0)
    images = _images()
    out = _np(layer(images))
    np.testing.assert_allclose(out["target"], images / 127.5 - 1, atol=1e-6)
    np.testing.assert_allclose(out["reference"], out["target"], atol=1e-4)
    np.testing.assert_array_equal(out["correspondence"], np.tile(np.arange(24), (2, 1)))
    np.testing.assert_array_equal(out["valid"], 1.0)


def test_size_must_be_a_multiple_of_the_stride():
    with pytest.raises(ValueError, match="multiple of feature_stride=16"):
        SelfAugment()(_images(h=40, w=64))


def test_config_round_trip():
    layer = SelfAugment(feature_stride=8, color_shift=0.5, keep_white=True, xdog={"sigma": [0.2, 0.4]}, seed=3)
    clone = SelfAugment.from_config(layer.get_config())
    assert clone.get_config() == layer.get_config()
    images = _images(h=32, w=32)
    a, b = _np(layer(images)), _np(clone(images))
    for key in KEYS:
        np.testing.assert_array_equal(a[key], b[key])


@pytest.mark.multi_backend
def test_keep_white_share_keeps_the_paper_of_that_share_white():
    images = np.full((64, 32, 32, 3), 255, "uint8")  # white paper only
    images[:, 12:20, 12:20] = 40
    identity = dict(tps_jitter=0.0, tps_scale=(1, 1), tps_rotation=0, tps_translation=0, color_shift=0.5, seed=5)


    def white_paper(keep_white):  # images whose paper stays white, and the example
        out = _np(SelfAugment(keep_white=keep_white, **identity)(images))
        return int(np.all(out["target"][:, 0, 0] == 1.0, axis=-1).sum()), out

    # without keep_white, paper stays white only where all three shifts are >= 0 (1 in 8)
    (always, a), (half, _), (never, b) = white_paper(True), white_paper(0.5), white_paper(False)
    assert always == 64 and never <= 20 and 22 <= half <= 52  # expected 64, 8, 36 (each ~1e-4 outside)
    # True / False draw nothing extra: every other random quantity is as before
    np.testing.assert_array_equal(a["negative"], b["negative"])


def test_keep_white_must_be_a_bool_or_a_share():
    with pytest.raises(ValueError, match="keep_white must be true, false or a share in"):
        SelfAugment(keep_white=1.5)
    assert SelfAugment.from_config(SelfAugment(keep_white=0.25).get_config()).keep_white == 0.25


@pytest.mark.multi_backend
def test_runs_inside_tf_data_graph():
    """tf.data map under any Keras backend (DataLayer switches the ops to TensorFlow)."""
    tf = pytest.importorskip("tensorflow")
    ds = tf.data.Dataset.from_tensor_slices(_images(n=4)).batch(2).map(SelfAugment(seed=1))
    batches = list(ds)
    assert len(batches) == 2
    assert all(isinstance(b["reference"], tf.Tensor) for b in batches)
    assert batches[0]["reference"].shape == (2, 64, 96, 3)


@pytest.mark.multi_backend
def test_tf_data_keeps_the_pixel_range():
    """uint8 pixels are rescaled to [-1, 1] inside tf.data too (DataLayer casts before call)."""
    tf = pytest.importorskip("tensorflow")
    layer = SelfAugment(color_shift=0.0, tps_jitter=0.0, tps_scale=(1, 1), tps_rotation=0, tps_translation=0, seed=0)
    images = _images()
    sketch = np.full((2, 64, 96, 1), 255, "uint8")
    sketch[:, :8] = 0
    ds = tf.data.Dataset.from_tensors({"image": images, "sketch": sketch}).map(layer)
    out = {k: np.asarray(v) for k, v in next(iter(ds)).items()}
    np.testing.assert_allclose(out["target"], images / 127.5 - 1, atol=1e-6)
    np.testing.assert_array_equal(out["sketch"], sketch / 127.5 - 1)


@requires_backend("jax")
@pytest.mark.multi_backend
def test_runs_inside_jax_jit():
    import jax

    layer = SelfAugment(seed=1)
    images = _images()
    eager = _np(layer(images))
    layer2 = SelfAugment(seed=1)
    layer2(images[:1])  # creates the seed state
    state = [v.value for v in layer2.non_trainable_variables]

    # reset the state so the jitted call draws what the eager call of `layer` drew
    @jax.jit
    def step(state, x):
        with keras.StatelessScope(state_mapping=list(zip(layer2.non_trainable_variables, state))) as scope:
            out = layer2(x)
        return out, [scope.get_current_value(v) for v in layer2.non_trainable_variables]

    out, _ = step([np.asarray(SelfAugment(seed=1).generator.state.value)], images)
    out = _np(out)
    for key in KEYS:
        np.testing.assert_allclose(out[key], eager[key], atol=1e-3)


@pytest.mark.multi_backend  # under JAX too: a layer switched to TensorFlow ops must not be jitted
def test_tensorflow_and_jax_ops_agree_for_the_same_params():
    """The same drawn parameters give the same example on both backends' ops."""
    pytest.importorskip("jax")
    pytest.importorskip("tensorflow")
    layer = SelfAugment(seed=0)
    images = _images()
    outputs = {}
    for name in ("tensorflow", "jax"):
        layer.backend = DynamicBackend(name)
        outputs[name] = layer.example_from_numpy(images, np.random.default_rng(4))
    for key in KEYS:
        np.testing.assert_allclose(outputs["tensorflow"][key], outputs["jax"][key], atol=1e-3, err_msg=key)
