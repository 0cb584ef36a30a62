"""benchmarks/conv_variants.py: every variant it times computes the plain convolution."""

import sys
from pathlib import Path

import keras
import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))

pytestmark = pytest.mark.multi_backend


@pytest.mark.parametrize("shape,filters", [((2, 7, 6, 3), 5), ((1, 6, 6, 8), 3), ((1, 5, 9, 1), 16)])
def test_every_variant_equals_the_plain_convolution(shape, filters):
    from conv_variants import variants

    rng = np.random.default_rng(0)
    x = rng.normal(size=shape).astype("float32")
    kernel = rng.normal(size=(3, 3, shape[-1], filters)).astype("float32")
    plain = keras.ops.convert_to_numpy(keras.ops.conv(x, kernel, padding="same"))
    for name, conv in variants().items():
        if name.startswith("s2d") and (shape[1] % 2 or shape[2] % 2):
            continue  # space-to-depth needs even sizes (its layer falls back to the plain conv)
        np.testing.assert_allclose(keras.ops.convert_to_numpy(conv(x, kernel)), plain, atol=5e-5, err_msg=name)


def test_patch_matmul_conv_handles_even_kernels_like_same_padding():
    from conv_variants import patch_matmul_conv

    rng = np.random.default_rng(1)
    x, kernel = rng.normal(size=(2, 6, 5, 3)).astype("float32"), rng.normal(size=(4, 2, 3, 4)).astype("float32")
    np.testing.assert_allclose(keras.ops.convert_to_numpy(patch_matmul_conv(x, kernel)),
                               keras.ops.convert_to_numpy(keras.ops.conv(x, kernel, padding="same")), atol=5e-5)
