from pathlib import Path

import keras
import numpy as np
import pytest

from keras_scft.inference import load_generator
from keras_scft.layers.instance_norm import InstanceNormalization
from keras_scft.layers.padded_conv import SpaceToDepthConv2D
from keras_scft.layers.upsample_conv import UpsampleConcatConv2D
from keras_scft.saving import load_model

FIXTURES = Path(__file__).parent / "fixtures"

pytestmark = pytest.mark.multi_backend


@pytest.mark.parametrize("version,written", [("v0", "before its fused decoder/image convolutions"),
                                             ("v1", "before its space-to-depth convolutions"),
                                             ("v2", "before its one-pass instance normalization")])
def test_generator_written_by_earlier_code_loads_and_reproduces_its_outputs(version, written):
    """Each fixture was saved, with its outputs on fixed inputs, by earlier code: v0 by commit
    f05217f (plain Conv2D/UpSampling2D/Concatenate decoder), v1 by d7b5a2b (before the
    space-to-depth convolutions), v2 by 4999016 (GroupNormalization(groups=-1) as instance norm; its
    gammas and betas random, so a mix-up shows). The current layers load its weights and compute
    the same images."""
    saved = np.load(FIXTURES / f"legacy_{version}_generator" / "io.npz")
    with pytest.warns(UserWarning, match="Save it again") as caught:
        generator = load_generator(FIXTURES / f"legacy_{version}_generator" / "generator.keras")
    assert len(caught) == 1 and written in str(caught[0].message)  # one warning, not the failed attempts'
    assert isinstance(generator.get_layer("decoder_s0a_conv"), UpsampleConcatConv2D)
    assert isinstance(generator.get_layer("decoder_s3b_conv"), SpaceToDepthConv2D)
    assert isinstance(generator.get_layer("decoder_s3b_norm"), InstanceNormalization)
    out = generator({"sketch": saved["sketch"], "reference": saved["reference"]})["image"]
    np.testing.assert_allclose(keras.ops.convert_to_numpy(out), saved["image"], atol=5e-5)
    # names restored after loading
    assert (UpsampleConcatConv2D.__name__, SpaceToDepthConv2D.__name__, InstanceNormalization.__name__) == (
        "UpsampleConcatConv2D", "SpaceToDepthConv2D", "InstanceNormalization")


def test_a_current_file_loads_without_warnings(tmp_path):
    import warnings

    from keras_scft import build_generator

    build_generator(widths=(4,) * 10, residual_blocks=1).save(tmp_path / "g.keras")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load_model(tmp_path / "g.keras")


def test_a_broken_file_reports_the_plain_error(tmp_path):
    path = tmp_path / "broken.keras"
    path.write_bytes(b"not a zip file")
    with pytest.raises(Exception) as info:
        load_model(path)
    assert "could not be loaded" not in str(info.value)
