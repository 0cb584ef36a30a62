import numpy as np
import pytest

from keras_scft import losses

pytestmark = pytest.mark.multi_backend


def test_triplet_zero_when_positives_win_by_more_than_the_margin():
    logits = np.zeros((1, 3, 4), "float32")
    positive = np.array([[0, 1, 2]])
    negative = np.array([[3, 3, 3]])
    logits[0, np.arange(3), positive[0]] = 20.0
    assert float(losses.triplet_loss(logits, positive, negative, np.ones((1, 3)), margin=12.0)) == 0.0


def test_triplet_exact_value_and_invalid_positions_ignored():
    logits = np.array([[[1.0, 4.0, 0.0], [2.0, 2.0, 9.0], [0.0, 0.0, 0.0]]], "float32")
    positive = np.array([[0, 1, 2]])
    negative = np.array([[1, 2, 0]])
    valid = np.array([[1.0, 1.0, 0.0]])
    # i=0: max(0, -1 + 4 + 12) = 15 ; i=1: max(0, -2 + 9 + 12) = 19 ; i=2 invalid
    assert float(losses.triplet_loss(logits, positive, negative, valid, margin=12.0)) == pytest.approx(17.0)
    assert float(losses.triplet_loss(logits, positive, negative, np.zeros((1, 3)))) == 0.0


def test_triplet_is_per_position_not_whole_tensor():
    """A loss over flattened tensors would be 0 here; per position it is not."""
    logits = np.array([[[30.0, 0.0], [0.0, 0.0]]], "float32")
    value = losses.triplet_loss(logits, np.array([[0, 0]]), np.array([[1, 1]]), np.ones((1, 2)), margin=12.0)
    assert float(value) == pytest.approx(6.0)  # (0 + 12) / 2


def test_gram_and_style_match_numpy():
    rng = np.random.default_rng(0)
    a = [rng.normal(size=(2, 4, 5, 3)).astype("float32"), rng.normal(size=(2, 2, 3, 6)).astype("float32")]
    b = [rng.normal(size=x.shape).astype("float32") for x in a]

    def gram(x):
        n, h, w, c = x.shape
        f = x.reshape(n, -1, c)
        return np.swapaxes(f, 1, 2) @ f / (h * w * c)

    np.testing.assert_allclose(np.asarray(losses.gram_matrix(a[0])), gram(a[0]), rtol=1e-5, atol=1e-6)
    style = sum(np.mean(np.abs(gram(x) - gram(y))) for x, y in zip(a, b))
    perceptual = sum(np.mean(np.abs(x - y)) for x, y in zip(a, b))
    assert float(losses.style_loss(a, b)) == pytest.approx(style, rel=1e-5)
    assert float(losses.perceptual_loss(a, b)) == pytest.approx(perceptual, rel=1e-5)


def test_adversarial_forms():
    real = np.array([[2.0, 0.0]], "float32")
    fake = np.array([[-1.0, 1.0]], "float32")
    assert float(losses.discriminator_loss(real, fake, "lsgan")) == pytest.approx(0.5 * (1.0 + 1.0))
    sp = lambda x: np.log1p(np.exp(x))  # noqa: E731
    bce = np.mean(sp(-real)) + np.mean(sp(fake))
    assert float(losses.discriminator_loss(real, fake, "bce")) == pytest.approx(bce, rel=1e-5)
    assert float(losses.generator_adversarial_loss(fake, "lsgan")) == pytest.approx(np.mean((fake - 1) ** 2))
    with pytest.raises(ValueError, match="allowed: lsgan, bce"):
        losses.generator_adversarial_loss(fake, "wgan")


def test_losses_are_float32_for_bfloat16_inputs():
    import keras

    x = keras.ops.cast(np.ones((1, 2, 2, 3)), "bfloat16")
    assert keras.backend.standardize_dtype(losses.reconstruction_loss(x, x * 0).dtype) == "float32"


def test_triplet_is_the_mean_of_per_example_means():
    logits = np.zeros((2, 2, 3), "float32")
    positive = np.zeros((2, 2), "int64")
    negative = np.ones((2, 2), "int64")
    valid = np.array([[1.0, 0.0], [1.0, 1.0]])
    logits[1, 1, 1] = 4.0  # example 1, position 1: hinge 16
    # example 0: 12 ; example 1: (12 + 16) / 2 = 14 -> mean 13
    assert float(losses.triplet_loss(logits, positive, negative, valid)) == pytest.approx(13.0)


def test_foreground_cells_mark_cells_with_enough_non_white_pixels():
    images = np.ones((2, 8, 12, 3), "float32")  # white paper, a 2 x 3 grid of 4 x 4 cells
    images[0, 0:2, 0:1] = -1.0  # 2 of 16 pixels dark: 12.5% >= 10%
    images[0, 5, 9] = [1.0, 1.0, 0.5]  # 1 of 16 with one channel below white: 6.25% < 10%
    images[1, 4:8, 4:8, 1] = 0.0  # a whole green-less cell
    cells = np.asarray(losses.foreground_cells(images, (2, 3)))
    np.testing.assert_array_equal(cells, [[1, 0, 0, 0, 0, 0], [0, 0, 0, 0, 1, 0]])


def test_foreground_triplet_trains_only_drawn_cells():
    """triplet_cells="foreground": on an all-white target no cell trains (loss 0); with ink in
    one cell the loss is that cell's hinge alone."""
    from tests.helpers import tiny_colorizer

    model = tiny_colorizer()
    model.compile(loss_weights={"perceptual": 0, "style": 0, "adversarial": 0}, triplet_cells="foreground")
    logits = np.zeros((1, 4, 4), "float32")
    logits[0, 2, 3] = 5.0  # cell 2's positive scores 5: hinge 12 - 5 = 7; the others 12
    batch = {"target": np.ones((1, 32, 32, 3), "float32"), "valid": np.ones((1, 4), "float32"),
             "correspondence": np.array([[3, 3, 3, 3]]), "negative": np.array([[0, 0, 0, 0]])}
    image = np.ones((1, 32, 32, 3), "float32")
    _, terms = model.generator_objective(image, logits, batch)
    assert float(terms["tr"]) == 0.0
    batch["target"][0, 0:16, 0:16] = -1.0  # cell 0 (row 0, col 0): hinge 12
    batch["target"][0, 16:32, 0:16] = -1.0  # cell 2 (row 1, col 0): hinge 7
    _, terms = model.generator_objective(image, logits, batch)
    assert float(terms["tr"]) == pytest.approx((12.0 + 7.0) / 2)
    model.compile(loss_weights={"perceptual": 0, "style": 0, "adversarial": 0})  # "all": four cells
    _, terms = model.generator_objective(image, logits, batch)
    assert float(terms["tr"]) == pytest.approx((12.0 * 3 + 7.0) / 4)
    with pytest.raises(ValueError, match="triplet_cells must be one of"):
        model.compile(triplet_cells="background")


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_gram_gradient_is_the_autodiff_one(dtype):
    """The one-matmul gradient F (dG + dG^T) equals autodiff of F^T F, in the features' dtype."""
    import keras
    from keras import ops

    from tests.helpers import vjp

    rng = np.random.default_rng(1)
    x = rng.normal(size=(2, 4, 5, 3)).astype("float32")
    cotangent = rng.normal(size=(2, 3, 3)).astype("float32")  # not symmetric

    def autodiff(f):
        f = ops.reshape(ops.cast(f, "float32"), (2, 20, 3))
        return ops.matmul(ops.transpose(f, (0, 2, 1)), f) / 60.0

    def ours(f):
        return losses.gram_matrix(ops.cast(f, dtype))

    (expected,) = vjp(autodiff, [x], cotangent)
    (got,) = vjp(ours, [x], cotangent)
    tolerance = 1e-5 if dtype == "float32" else 2e-2
    np.testing.assert_allclose(got, expected, rtol=tolerance, atol=tolerance * np.abs(expected).max())
    assert keras.ops.convert_to_numpy(ours(x)).dtype == np.float32  # the Gram itself is float32


def test_example_weights_average_over_the_counted_examples_only():
    rng = np.random.default_rng(0)
    out, tgt = rng.uniform(-1, 1, (2, 3, 4, 4, 3)).astype("float32")
    weights = np.array([1.0, 0.0, 1.0])
    own = np.abs(out - tgt).mean(axis=(1, 2, 3))
    np.testing.assert_allclose(float(losses.reconstruction_loss(out, tgt, weights)), own[[0, 2]].mean(), rtol=1e-6)
    np.testing.assert_allclose(float(losses.reconstruction_loss(out, tgt)), np.abs(out - tgt).mean(), rtol=1e-6)
    assert float(losses.reconstruction_loss(out, tgt, np.zeros(3))) == 0.0
    feats_a, feats_b = [out, out[:, :2, :2]], [tgt, tgt[:, :2, :2]]
    expected = sum(np.abs(a - b)[[0, 2]].mean() for a, b in zip(feats_a, feats_b))
    np.testing.assert_allclose(float(losses.perceptual_loss(feats_a, feats_b, weights)), expected, rtol=1e-5)
    gram = lambda f: np.einsum("bhwc,bhwd->bcd", f, f) / np.prod(f.shape[1:])  # noqa: E731
    expected = sum(np.abs(gram(a) - gram(b))[[0, 2]].mean() for a, b in zip(feats_a, feats_b))
    np.testing.assert_allclose(float(losses.style_loss(feats_a, feats_b, weights)), expected, rtol=1e-5)
