"""benchmarks/inference_variants.py: its variants change how, not what, the generator computes."""

import sys
from pathlib import Path

import keras
import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))

pytestmark = pytest.mark.multi_backend


def test_variant_names_are_checked():
    from inference_variants import parse_variant, patches

    assert parse_variant("base") == set()
    assert parse_variant("twopass+bf16w") == {"twopass", "bf16w"}
    with pytest.raises(ValueError, match="unknown variant part"):
        parse_variant("twopass+fp8")
    with pytest.raises(ValueError, match="pick one"):
        patches({"twopass", "widestats"})
    with pytest.raises(ValueError, match="pick one"):
        patches({"widenorm", "widestats"})
    with pytest.raises(ValueError, match="pick one"):
        patches({"pool2", "poolrows"})


def test_patched_functions_compute_what_they_replace():
    from inference_variants import patches

    from keras_scft.layers.instance_norm import one_pass_moments
    from keras_scft.layers.pooling import BlockAveragePooling2D

    x = (2.0 + np.random.default_rng(0).normal(size=(2, 8, 12, 3))).astype("float32")
    for part in ("twopass", "widestats"):
        (_, _, moments), = patches({part})
        for ours, theirs in zip(one_pass_moments(x), moments(x)):
            np.testing.assert_allclose(keras.ops.convert_to_numpy(ours), keras.ops.convert_to_numpy(theirs),
                                       rtol=1e-4, err_msg=part)
    layer = BlockAveragePooling2D(4)
    for part in ("pool2", "poolrw", "poolrows"):
        (owner, attribute, call), = patches({part})
        assert (owner, attribute) == (BlockAveragePooling2D, "call")
        np.testing.assert_allclose(keras.ops.convert_to_numpy(call(layer, x)),
                                   keras.ops.convert_to_numpy(layer(x)), atol=1e-6, err_msg=part)


@pytest.mark.parametrize("shape", [(2, 8, 12, 16), (2, 6, 10, 40), (1, 4, 4, 3)])
def test_wide_instance_norm_computes_the_layer_and_its_gradient(shape):
    from inference_variants import patches

    from keras_scft.layers.instance_norm import InstanceNormalization
    from tests.helpers import assert_same_gradients

    rng = np.random.default_rng(0)
    layer = InstanceNormalization()
    layer.build(shape)
    layer.gamma.assign(rng.uniform(0.5, 1.5, shape[-1:]).astype("float32"))
    layer.beta.assign(rng.normal(size=shape[-1:]).astype("float32"))
    x = (3.0 + rng.normal(size=shape)).astype("float32")
    (owner, attribute, wide_call), = patches({"widenorm"})
    assert (owner, attribute) == (InstanceNormalization, "call")
    np.testing.assert_allclose(keras.ops.convert_to_numpy(wide_call(layer, x)),
                               keras.ops.convert_to_numpy(layer.call(x)), atol=1e-5)
    assert_same_gradients(lambda v: wide_call(layer, v), layer.call, [x], atol=1e-4)


def test_kernels_cast_outside_give_the_same_images():
    """bf16w: mixed precision casts kernels to bfloat16 inside the forward anyway, so passing
    them cast (CPU: the same bits) changes nothing."""
    from inference_variants import cast_kernels

    from keras_scft.layers.generator import build_generator
    from tests.helpers import TINY_WIDTHS

    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_bfloat16")
    try:
        generator = build_generator(widths=TINY_WIDTHS, residual_blocks=1)
        rng = np.random.default_rng(0)
        inputs = {"sketch": rng.uniform(-1, 1, (2, 32, 32, 1)).astype("float32"),
                  "reference": rng.uniform(-1, 1, (2, 32, 32, 3)).astype("float32")}
        tv = [v.value for v in generator.trainable_variables]
        ntv = [v.value for v in generator.non_trainable_variables]
        cast = cast_kernels(tv)
        assert any(keras.backend.standardize_dtype(v.dtype) == "bfloat16" for v in cast)
        images = [keras.ops.convert_to_numpy(keras.ops.cast(
            generator.stateless_call(variables, ntv, inputs, training=False)[0]["image"], "float32"))
            for variables in (tv, cast)]
        np.testing.assert_array_equal(images[0], images[1])
    finally:
        keras.config.set_dtype_policy(previous)
