import keras
import numpy as np
import pytest

from keras_scft.metrics.attention_statistics import attention_statistics
from keras_scft.metrics.correspondence import correspondence_accuracy

pytestmark = pytest.mark.multi_backend


def _numpy(stats):
    return {k: float(keras.ops.convert_to_numpy(v)) for k, v in stats.items()}


def test_agrees_with_softmax_and_the_numpy_correspondence_accuracy():
    rng = np.random.default_rng(0)
    logits = rng.normal(scale=3.0, size=(3, 16, 16)).astype("float32")
    correspondence = rng.integers(0, 16, size=(3, 16))
    correspondence[:, :6] = logits[:, :6].argmax(-1)  # some hits
    valid = (rng.uniform(size=(3, 16)) < 0.7).astype("float32")
    stats = _numpy(attention_statistics(logits, correspondence, valid))
    alpha = np.exp(logits - logits.max(-1, keepdims=True))
    alpha /= alpha.sum(-1, keepdims=True)
    mask = valid != 0
    np.testing.assert_allclose(stats["attn_peak"], alpha.max(-1)[mask].mean(), rtol=1e-5)
    expected = correspondence_accuracy(alpha, correspondence, valid, grid=(4, 4))["exact"]
    np.testing.assert_allclose(stats["attn_hit"], expected, rtol=1e-6)
    assert expected > 0


def test_extremes_and_no_valid_cells():
    correspondence = np.array([[2, 0]])
    sharp = np.array([[[0.0, 0.0, 80.0], [0.0, 80.0, 0.0]]], "float32")  # cell 0 hits, cell 1 misses
    stats = _numpy(attention_statistics(sharp, correspondence, np.ones((1, 2))))
    assert stats["attn_peak"] == pytest.approx(1.0) and stats["attn_hit"] == pytest.approx(0.5)
    flat = _numpy(attention_statistics(np.zeros((1, 2, 3), "float32"), correspondence, np.ones((1, 2))))
    assert flat["attn_peak"] == pytest.approx(1 / 3)
    none = _numpy(attention_statistics(sharp, correspondence, np.zeros((1, 2))))
    assert none == {"attn_peak": 0.0, "attn_hit": 0.0}
