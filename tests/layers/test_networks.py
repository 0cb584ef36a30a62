import keras
import numpy as np
import pytest

from keras_scft import build_discriminator, build_generator
from keras_scft.layers.encoder import SCFTEncoder
from keras_scft.layers.residual import ResidualBlock
from keras_scft.layers.spectral_norm import SpectralNormConv2D, _power_iterate
from tests.helpers import TINY_WIDTHS, run_layer_test

pytestmark = pytest.mark.multi_backend


def _pair(h=32, w=48, b=2, seed=0):
    rng = np.random.default_rng(seed)
    return {"sketch": rng.uniform(-1, 1, (b, h, w, 1)).astype("float32"),
            "reference": rng.uniform(-1, 1, (b, h, w, 3)).astype("float32")}


def test_default_encoder_has_the_papers_layout():
    encoder = SCFTEncoder(3)
    features, *skips = encoder(np.zeros((1, 256, 256, 3), "float32"))
    assert encoder.feature_dim == 992 and features.shape == (1, 16, 16, 992)
    assert [s.shape[1:] for s in skips] == [(256, 256, 16), (128, 128, 32), (64, 64, 64), (32, 32, 128)]


def test_generator_any_grid_no_hard_coded_size(tmp_path):
    out = run_layer_test(lambda: build_generator(widths=TINY_WIDTHS, residual_blocks=1), _pair(32, 48), tmp_path,
                         atol=1e-5)
    assert out["image"].shape == (2, 32, 48, 3)
    assert out["attention_logits"].shape == (2, 2 * 3, 2 * 3)
    image = np.asarray(out["image"])
    assert image.min() >= -1 and image.max() <= 1


def test_generator_attention_maps_are_distributions():
    generator = build_generator(widths=TINY_WIDTHS, residual_blocks=1)
    pair = _pair(32, 64)
    alpha = np.asarray(generator.attention_maps(pair["sketch"], pair["reference"]))
    assert alpha.shape == (2, 8, 8)
    np.testing.assert_allclose(alpha.sum(-1), 1.0, atol=1e-5)


def test_generator_attention_temperature_changes_predict_and_is_saved(tmp_path):
    generator = build_generator(widths=TINY_WIDTHS, residual_blocks=1)
    pair = _pair(32, 32)
    before = np.asarray(generator.predict_on_batch(pair)["image"])  # traces predict at temperature 1
    generator.attention_temperature = 4.0
    warm = np.asarray(generator.predict_on_batch(pair)["image"])
    assert not np.allclose(warm, before, atol=1e-4)  # not the stale trace
    fresh = build_generator(widths=TINY_WIDTHS, residual_blocks=1, attention_temperature=4.0)
    fresh.set_weights(generator.get_weights())
    np.testing.assert_allclose(np.asarray(fresh.predict_on_batch(pair)["image"]), warm, atol=1e-5)
    generator.save(tmp_path / "g.keras")
    loaded = keras.saving.load_model(tmp_path / "g.keras")
    assert loaded.attention_temperature == 4.0
    with pytest.raises(ValueError, match="attention temperature must be a finite number > 0, got -1"):
        generator.attention_temperature = -1


def test_discriminator_checks(tmp_path):
    pair = _pair()
    inputs = {"image": pair["reference"], "sketch": pair["sketch"]}
    out = run_layer_test(lambda: build_discriminator(widths=(16, 32, 32)), inputs, tmp_path, atol=1e-5)
    assert out.shape == (2, 8, 12, 1)


def test_residual_block_checks(tmp_path):
    x = np.random.default_rng(0).normal(size=(2, 4, 6, 8)).astype("float32")
    run_layer_test(ResidualBlock, x, tmp_path, atol=1e-5)


def test_spectral_norm_divides_by_the_largest_singular_value():
    layer = SpectralNormConv2D(6, 3, padding="same")
    layer.build((None, 8, 8, 4))
    # A kernel with a known spectrum (top singular values 3 and 1.5): power iteration then
    # converges at a fixed rate, whatever the random start (a random kernel's top two
    # singular values can be close enough to make the test flaky).
    rng = np.random.default_rng(0)
    left, _ = np.linalg.qr(rng.normal(size=(36, 6)))
    right, _ = np.linalg.qr(rng.normal(size=(6, 6)))
    spectrum = np.array([3.0, 1.5, 1.0, 0.8, 0.5, 0.2])
    layer.kernel.assign((left * spectrum @ right.T).reshape(3, 3, 4, 6).astype("float32"))
    x = rng.normal(size=(1, 8, 8, 4)).astype("float32")
    for _ in range(20):  # power iteration converges in training calls
        layer(x, training=True)
    kernel, _ = layer.normalized_kernel()
    sigma = np.linalg.svd(np.asarray(kernel).reshape(-1, 6), compute_uv=False)[0]
    assert sigma == pytest.approx(1.0, abs=1e-3)


def test_spectral_norm_build_converges_u_on_the_initial_kernel():
    """Built, u is already the kernel's top right singular vector (computed in numpy)."""
    keras.utils.set_random_seed(0)
    layer = SpectralNormConv2D(6, 3, padding="same")
    layer.build((None, 8, 8, 4))
    w = np.asarray(layer.kernel).reshape(-1, 6)
    _, spectrum, right = np.linalg.svd(w)
    u = np.asarray(layer.vector_u)[0]
    assert abs(u @ right[0]) > 0.99 or spectrum[1] / spectrum[0] > 0.9  # (close spectra converge slowly)
    sigma, _ = layer.sigma()
    assert float(sigma) == pytest.approx(spectrum[0], rel=1e-2)


def test_power_iteration_is_the_same_in_numpy_and_keras_ops():
    rng = np.random.default_rng(0)
    w = rng.normal(size=(36, 6)).astype("float32")
    u = rng.normal(size=(1, 6)).astype("float32")
    np.testing.assert_allclose(_power_iterate(w, u, 3, xp=np), np.asarray(_power_iterate(w, u, 3)),
                               rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("filters,strides,shape", [
    (6, 2, (2, 8, 8, 4)),     # D's first conv: on space-to-depth blocks
    (6, 2, (2, 8, 8, 32)),    # more channels: keras.ops.conv
    (6, 2, (2, 9, 7, 4)),     # odd size: keras.ops.conv
    (1, 1, (2, 5, 6, 8)),     # D's logits: tap_sum_conv
    (6, 1, (2, 5, 6, 8)),     # keras.ops.conv
])
def test_spectral_norm_output_is_the_conv_with_the_normalized_kernel(filters, strides, shape):
    """conv(x, W) / sigma, as computed (in whichever form), equals conv(x, W / sigma)."""
    x = np.random.default_rng(0).normal(size=shape).astype("float32")
    layer = SpectralNormConv2D(filters, 4, strides=strides, padding="same", bias_initializer="random_normal")
    layer.build(x.shape)
    plain = keras.layers.Conv2D(filters, 4, strides=strides, padding="same")
    plain.build(x.shape)
    kernel, _ = layer.normalized_kernel()
    plain.set_weights([np.asarray(kernel), np.asarray(layer.bias)])
    np.testing.assert_allclose(np.asarray(layer(x)), np.asarray(plain(x)), rtol=1e-5, atol=1e-5)


def test_discriminator_takes_the_fast_forms_where_measured_faster(monkeypatch):
    """The first conv (4 channels, stride 2) on space-to-depth blocks and the logits (1 filter)
    as a tap sum; the 64- and 128-channel strided convs stay plain (slower as blocks)."""
    from keras_scft.layers import spectral_norm

    used = []
    for name in ("strided_conv_on_blocks", "tap_sum_conv"):
        real = getattr(spectral_norm, name)
        monkeypatch.setattr(spectral_norm, name, lambda x, k, real=real, name=name: used.append((name, x.shape[-1])) or real(x, k))
    d = build_discriminator(widths=(64, 128, 256, 512))
    used.clear()  # the symbolic build (unknown height and width)
    d({"image": np.zeros((1, 32, 32, 3), "float32"), "sketch": np.zeros((1, 32, 32, 1), "float32")})
    assert used == [("strided_conv_on_blocks", 4), ("tap_sum_conv", 512)]


def test_spectral_norm_state_survives_save(tmp_path):
    x = np.random.default_rng(0).normal(size=(1, 8, 8, 4)).astype("float32")
    run_layer_test(lambda: SpectralNormConv2D(6, 3, padding="same"), x, tmp_path, atol=1e-5)


def test_generator_layout_errors_name_the_fields():
    from keras_scft import build_generator

    with pytest.raises(ValueError, match=r"downsample block indices \[2, 4, 6, 8\] .* widths \[8, 8, 16, 16\]"):
        build_generator(widths=(8, 8, 16, 16))
