import keras
import numpy as np
import pytest

from keras_scft.layers.scft import SCFTAttention
from tests.helpers import run_layer_test

pytestmark = pytest.mark.multi_backend


def _features(rng, b=2, h=3, w=5, d=8):
    return [rng.normal(size=(b, h, w, d)).astype("float32"), rng.normal(size=(b, h, w, d)).astype("float32")]


def _numpy_scft(layer, v_s, v_r):
    wq, wk, wv = (np.asarray(l.kernel) for l in (layer.query, layer.key, layer.value))
    b, h, w, d = v_s.shape
    s = v_s.reshape(b, -1, d)
    r = v_r.reshape(b, -1, d)
    logits = (s @ wq) @ np.swapaxes(r @ wk, 1, 2) / np.sqrt(d)  # scale first, then softmax
    alpha = np.exp(logits - logits.max(-1, keepdims=True))
    alpha /= alpha.sum(-1, keepdims=True)
    c = s + alpha @ (r @ wv)
    return c.reshape(b, h, w, d), logits, alpha


def test_matches_numpy_reference_and_rows_sum_to_one():
    layer = SCFTAttention()
    v_s, v_r = _features(np.random.default_rng(0))
    c, logits, alpha = layer([v_s, v_r], return_attention=True)
    ref_c, ref_logits, ref_alpha = _numpy_scft(layer, v_s, v_r)
    np.testing.assert_allclose(np.asarray(logits), ref_logits, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(np.asarray(alpha), ref_alpha, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(np.asarray(c), ref_c, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(np.asarray(alpha).sum(-1), 1.0, atol=1e-5)


def test_channels_last_positions_are_row_major():
    """Query position (row, col) reads v_s[:, row, col]: moving one sketch feature moves one row."""
    layer = SCFTAttention()
    v_s, v_r = _features(np.random.default_rng(1), b=1, h=2, w=3)
    _, logits = layer([v_s, v_r])
    swapped = v_s.copy()
    swapped[0, 1, 2], swapped[0, 0, 0] = v_s[0, 0, 0], v_s[0, 1, 2]
    _, logits2 = layer([swapped, v_r])
    np.testing.assert_allclose(np.asarray(logits2)[0, 5], np.asarray(logits)[0, 0], atol=1e-5)


def test_stop_gradient_attention_keeps_the_forward_pass():
    v = _features(np.random.default_rng(2))
    plain = SCFTAttention()
    sga = SCFTAttention(stop_gradient_attention=True)
    plain(v)
    sga(v)
    sga.set_weights(plain.get_weights())
    for a, b in zip(plain(v), sga(v)):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), atol=1e-6)


def test_temperature_divides_the_scores_before_the_softmax_only():
    v = _features(np.random.default_rng(4))
    plain, warm = SCFTAttention(), SCFTAttention(temperature=3.0)
    plain(v)
    warm(v)
    warm.set_weights(plain.get_weights())
    c, logits, alpha = warm(v, return_attention=True)
    _, ref_logits, _ = _numpy_scft(plain, *v)
    np.testing.assert_allclose(np.asarray(logits), ref_logits, rtol=1e-4, atol=1e-4)  # unchanged
    scaled = np.exp(ref_logits / 3.0 - (ref_logits / 3.0).max(-1, keepdims=True))
    np.testing.assert_allclose(np.asarray(alpha), scaled / scaled.sum(-1, keepdims=True), rtol=1e-4, atol=1e-5)
    assert np.asarray(alpha).max() < np.asarray(plain(v, return_attention=True)[2]).max()  # flatter
    assert not np.allclose(np.asarray(c), np.asarray(plain(v)[0]), atol=1e-3)


@pytest.mark.parametrize("bad", [0, -1.0, float("inf"), float("nan"), "warm", None])
def test_temperature_must_be_finite_and_positive(bad):
    with pytest.raises(ValueError, match="attention temperature must be a finite number > 0"):
        SCFTAttention(temperature=bad)


def test_standard_layer_checks_with_a_temperature(tmp_path):
    run_layer_test(lambda: SCFTAttention(temperature=2.5), _features(np.random.default_rng(5), h=4, w=6), tmp_path,
                   atol=1e-5)
    assert SCFTAttention.from_config(SCFTAttention(temperature=2.5).get_config()).temperature == 2.5


def test_standard_layer_checks(tmp_path):
    run_layer_test(SCFTAttention, _features(np.random.default_rng(3), h=4, w=6), tmp_path, atol=1e-5)
