from pathlib import Path

import keras
import numpy as np
import pytest

from keras_scft.inference import load_generator
from keras_scft.layers.upsample_conv import UpsampleConcatConv2D
from keras_scft.saving import load_model
LEGACY = Path(__file__).parent / "fixtures" / "legacy_v0_generator"

pytestmark = pytest.mark.multi_backend


def test_generator_written_before_the_fused_convs_loads_and_reproduces_its_outputs():
    """The fixture was saved by the code of commit f05217f (plain Conv2D/UpSampling2D/
    Concatenate decoder), with its outputs on fixed inputs: the current layers load its weights
    and compute the same images."""
    saved = np.load(LEGACY / "io.npz")
    with pytest.warns(UserWarning, match="Save it again") as caught:
        generator = load_generator(LEGACY / "generator.keras")
    assert len(caught) == 1  # one warning, not the failed first attempt's
    assert isinstance(generator.get_layer("decoder_s0a_conv"), UpsampleConcatConv2D)
    out = generator({"sketch": saved["sketch"], "reference": saved["reference"]})["image"]
    np.testing.assert_allclose(keras.ops.convert_to_numpy(out), saved["image"], atol=1e-5)
    assert UpsampleConcatConv2D.__name__ == "UpsampleConcatConv2D"  # names restored after loading


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
