import numpy as np
import pytest

from keras_scft.augment.backend import active_backend
from keras_scft.augment.color import WHITE_RAMP, color_shift

pytestmark = pytest.mark.multi_backend


def _shift(images, shift, keep_white):
    return np.asarray(color_shift(active_backend(), images.astype("float32"), shift.astype("float32"), keep_white))


def test_shift_moves_every_pixel_and_clips():
    images = np.array([[[[-1.0, 0.0, 0.95], [0.2, 0.2, 0.2]]]])  # [1, 1, 2, 3]
    out = _shift(images, np.array([[0.5, -0.25, 0.1]]), keep_white=False)
    np.testing.assert_allclose(out, [[[[-0.5, -0.25, 1.0], [0.7, -0.05, 0.3]]]], atol=1e-6)


def test_keep_white_fades_the_shift_out_on_white_paper():
    low, high = WHITE_RAMP
    middle = (low + high) / 2
    # darkest channel: well below the ramp, at its middle, white; an anti-aliased edge pixel
    images = np.array([[[[0.0, 0.0, 0.0], [middle, 1.0, 1.0], [1.0, 1.0, 1.0], [high, high, 1.0]]]])
    out = _shift(images, np.array([[-0.4, 0.2, -0.2]]), keep_white=True)
    np.testing.assert_allclose(out[0, 0, 0], [-0.4, 0.2, -0.2], atol=1e-6)  # full shift
    np.testing.assert_allclose(out[0, 0, 1], [middle - 0.2, 1.0, 0.9], atol=1e-6)  # half shift (clipped)
    np.testing.assert_allclose(out[0, 0, 2], [1.0, 1.0, 1.0], atol=1e-6)  # white stays white
    np.testing.assert_allclose(out[0, 0, 3], [high, high, 1.0], atol=1e-6)  # at the top of the ramp: none


def test_keep_white_per_image_applies_only_where_chosen():
    images = np.ones((2, 1, 1, 3), "float32")  # white paper in both images
    shift = np.array([[-0.4, -0.4, -0.4], [-0.4, -0.4, -0.4]])
    chosen = active_backend().core.convert_to_tensor(np.array([True, False]))
    out = _shift(images, shift, keep_white=chosen)
    np.testing.assert_allclose(out[0, 0, 0], [1.0, 1.0, 1.0], atol=1e-6)  # kept white
    np.testing.assert_allclose(out[1, 0, 0], [0.6, 0.6, 0.6], atol=1e-6)  # tinted like keep_white=False
