"""benchmarks/inference_variants.py: its variants change how, not what, the generator computes."""

import sys
from pathlib import Path

import keras
import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))

pytestmark = pytest.mark.multi_backend


def test_variant_names_are_checked():
    from inference_variants import parse_variant

    assert parse_variant("base") == set()
    assert parse_variant("twopass+bf16w") == {"twopass", "bf16w"}
    with pytest.raises(ValueError, match="unknown variant part"):
        parse_variant("twopass+fp8")


def test_patched_functions_compute_what_they_replace():
    from inference_variants import patches

    from keras_scft.layers.instance_norm import one_pass_moments
    from keras_scft.layers.pooling import BlockAveragePooling2D

    x = (2.0 + np.random.default_rng(0).normal(size=(2, 8, 12, 3))).astype("float32")
    (_, _, two_pass), = patches({"twopass"})
    for ours, theirs in zip(one_pass_moments(x), two_pass(x)):
        np.testing.assert_allclose(keras.ops.convert_to_numpy(ours), keras.ops.convert_to_numpy(theirs), rtol=1e-4)
    layer = BlockAveragePooling2D(4)
    for part in ("pool2", "poolrw"):
        (owner, attribute, call), = patches({part})
        assert (owner, attribute) == (BlockAveragePooling2D, "call")
        np.testing.assert_allclose(keras.ops.convert_to_numpy(call(layer, x)),
                                   keras.ops.convert_to_numpy(layer(x)), atol=1e-6, err_msg=part)


@pytest.mark.slow
def test_kernels_cast_outside_give_the_same_images(tmp_path, backend):
    """bf16w: mixed precision casts kernels to bfloat16 inside the forward anyway (CPU: equal bits)."""
    if backend != "jax":
        pytest.skip("the benchmark times a jitted JAX function")
    from inference_variants import run

    reference = str(tmp_path / "base.npy")
    assert run("base", 32, 1, 1, reference)["max_abs_diff_vs_base"] == 0.0
    assert run("bf16w", 32, 1, 1, reference)["max_abs_diff_vs_base"] == 0.0
