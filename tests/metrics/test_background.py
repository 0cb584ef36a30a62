import numpy as np
import pytest

from keras_scft.metrics.background import background_error


def test_background_error_counts_only_the_white_paper():
    own = np.full((2, 4, 4, 3), 255, np.uint8)
    own[:, :2] = 40  # the drawing's coloured half: ignored
    out = np.full_like(own, 255)
    out[:, :2] = 0  # anything on the drawing itself does not count
    out[0, 3, 3] = (255, 195, 135)  # one tinted paper pixel: mean distance (0 + 60 + 120) / 3
    error, fraction = background_error(out, own)
    assert fraction == pytest.approx(0.5)
    assert error == pytest.approx(60.0 / 16)  # one of the 16 paper pixels is 60 off
    assert background_error(np.zeros_like(own), np.zeros_like(own)) == (None, 0.0)
    with pytest.raises(ValueError, match=r"\(2, 4, 4, 3\) and \(2, 4, 3, 3\)"):
        background_error(out, own[:, :, :3])
