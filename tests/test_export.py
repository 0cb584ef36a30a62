"""SavedModel export: signatures, parity with keras_scft.inference.colorize, version folders."""

import os
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from keras_scft.export import (
    FLOAT_SIGNATURE,
    GENERATE_SIGNATURE,
    OUTPUT_KEY,
    SERVING_SIGNATURE,
    export_saved_model,
    next_version,
    write_version,
)
from keras_scft.inference import colorize, to_uint8, to_unit
from keras_scft.layers.generator import build_generator
from tests.helpers import requires_backend

TINY_WIDTHS = (8, 8, 16, 16, 16, 16, 32, 32, 32, 32)


@pytest.fixture(scope="module")
def generator():
    return build_generator(widths=TINY_WIDTHS, residual_blocks=1)


@pytest.fixture(scope="module")
def fixed_export(generator, tmp_path_factory):
    """Exported at a fixed 32x32 network size, as for a generator trained at 32."""
    return export_saved_model(generator, tmp_path_factory.mktemp("fixed") / "colorizer", size=32)


@pytest.fixture(scope="module")
def fixed(fixed_export):
    return tf.saved_model.load(str(fixed_export))


@pytest.fixture(scope="module")
def dynamic(generator, tmp_path_factory):
    """Exported without a size: the network runs at each sketch's size rounded to 16."""
    return tf.saved_model.load(str(export_saved_model(generator, tmp_path_factory.mktemp("dynamic"))))


def _uint8(shape, seed):
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


def _call(model, signature, sketch, reference):
    function = model.signatures[signature]
    return function(sketch=tf.constant(sketch), reference=tf.constant(reference))[OUTPUT_KEY].numpy()


def _max_diff(a, b):
    return int(np.abs(a.astype(np.int32) - b.astype(np.int32)).max())


@pytest.mark.multi_backend
def test_uint8_signature_matches_colorize_at_other_sizes(generator, fixed_export, fixed):
    assert fixed_export.name == "1" and fixed_export.parent.name == "colorizer"
    sketch, reference = _uint8((2, 40, 52, 1), 0), _uint8((2, 24, 36, 3), 1)
    expected = colorize(generator, sketch, reference, size=32)
    out = _call(fixed, SERVING_SIGNATURE, sketch, reference)
    assert out.dtype == np.uint8 and out.shape == (2, 40, 52, 3)
    assert _max_diff(out, expected) <= 1
    rgb_sketch = np.repeat(sketch, 3, axis=-1)  # RGB sketches are converted to gray inside
    assert _max_diff(_call(fixed, SERVING_SIGNATURE, rgb_sketch, reference), expected) <= 1


@pytest.mark.multi_backend
def test_float_signature_matches_keras(generator, fixed):
    sketch, reference = _uint8((2, 32, 32, 1), 2), _uint8((2, 32, 32, 3), 3)
    out = _call(fixed, FLOAT_SIGNATURE, to_unit(sketch), to_unit(reference))
    assert out.dtype == np.float32 and out.min() >= -1.0 and out.max() <= 1.0
    image = generator.predict_on_batch({"sketch": to_unit(sketch), "reference": to_unit(reference)})["image"]
    np.testing.assert_allclose(out, np.asarray(image), atol=1e-3)
    sketch, reference = _uint8((2, 20, 44, 1), 4), _uint8((2, 50, 30, 3), 5)
    out = _call(fixed, FLOAT_SIGNATURE, to_unit(sketch), to_unit(reference))
    assert _max_diff(to_uint8(out), colorize(generator, sketch, reference, size=32)) <= 1


@pytest.mark.slow
@pytest.mark.multi_backend
def test_dynamic_size_export_follows_each_sketch(generator, dynamic):
    for seed, (height, width) in enumerate([(40, 50), (17, 70)]):  # networks 32x48, 16x64
        sketch, reference = _uint8((1, height, width, 1), seed), _uint8((1, 30, 30, 3), seed + 10)
        out = _call(dynamic, SERVING_SIGNATURE, sketch, reference)
        assert out.shape == (1, height, width, 3)
        assert _max_diff(out, colorize(generator, sketch, reference)) <= 1


@pytest.mark.multi_backend
def test_signatures_have_serving_dtypes_and_shapes(fixed, dynamic):
    signatures = fixed.signatures
    assert set(signatures) == {SERVING_SIGNATURE, FLOAT_SIGNATURE, GENERATE_SIGNATURE}
    serving = signatures[SERVING_SIGNATURE]
    inputs = serving.structured_input_signature[1]
    assert inputs["sketch"].dtype == tf.uint8 and inputs["sketch"].shape.as_list() == [None] * 4
    assert inputs["reference"].dtype == tf.uint8 and inputs["reference"].shape.as_list() == [None, None, None, 3]
    output = serving.structured_outputs[OUTPUT_KEY]
    assert output.dtype == tf.uint8 and output.shape.as_list() == [None, None, None, 3]
    assert signatures[FLOAT_SIGNATURE].structured_outputs[OUTPUT_KEY].dtype == tf.float32
    fixed = signatures[GENERATE_SIGNATURE].structured_input_signature[1]["sketch"].shape.as_list()
    generate = dynamic.signatures[GENERATE_SIGNATURE]
    assert fixed == [None, 32, 32, 1]
    assert generate.structured_input_signature[1]["sketch"].shape.as_list() == [None, None, None, 1]


@pytest.mark.slow
@requires_backend("tensorflow")
def test_saved_model_cli_shows_the_signatures(fixed_export):
    # The tool TF Serving users run to inspect a model, in a subprocess as they would.
    binary = shutil.which("saved_model_cli", path=os.path.dirname(sys.executable))
    command = [binary] if binary else [sys.executable, "-m", "tensorflow.python.tools.saved_model_cli"]
    command += ["show", "--all", "--dir", str(fixed_export)]
    result = subprocess.run(command, check=False, capture_output=True, text=True, timeout=120,
                            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert result.returncode == 0, result.stderr
    blocks = dict(re.findall(r"signature_def\['(\w+)'\]:(.*?)Method name", result.stdout, re.DOTALL))
    serving = " ".join(blocks[SERVING_SIGNATURE].split())
    assert "inputs['sketch'] tensor_info: dtype: DT_UINT8 shape: (-1, -1, -1, -1)" in serving
    assert "inputs['reference'] tensor_info: dtype: DT_UINT8 shape: (-1, -1, -1, 3)" in serving
    assert "outputs['colorized'] tensor_info: dtype: DT_UINT8 shape: (-1, -1, -1, 3)" in serving
    float_block = " ".join(blocks[FLOAT_SIGNATURE].split())
    assert "inputs['sketch'] tensor_info: dtype: DT_FLOAT shape: (-1, -1, -1, -1)" in float_block
    assert "outputs['colorized'] tensor_info: dtype: DT_FLOAT" in float_block
    assert "shape: (-1, 32, 32, 1)" in blocks[GENERATE_SIGNATURE]


@pytest.mark.multi_backend
@pytest.mark.parametrize("sketch, reference, message", [
    (np.zeros((1, 8, 8, 1), np.float32), np.zeros((1, 8, 8, 3), np.uint8), "uint8"),
    (np.zeros((1, 8, 8, 1), np.uint8), np.zeros((1, 8, 8, 4), np.uint8),
     r"tensor reference \[1,8,8,4\] is not compatible with expected shape \[\?,\?,\?,3\]"),
    (np.zeros((8, 8, 1), np.uint8), np.zeros((1, 8, 8, 3), np.uint8), r"tensor sketch \[8,8,1\]"),
    (np.zeros((1, 8, 8, 2), np.uint8), np.zeros((1, 8, 8, 3), np.uint8), r"1 \(gray\) or 3 \(RGB\)"),
    (np.zeros((2, 8, 8, 1), np.uint8), np.zeros((1, 8, 8, 3), np.uint8), "same batch size"),
])
def test_malformed_requests_fail_with_clear_errors(fixed, sketch, reference, message):
    with pytest.raises(tf.errors.InvalidArgumentError, match=message):
        _call(fixed, SERVING_SIGNATURE, sketch, reference)


def test_export_refuses_an_existing_version_before_any_work(generator, tmp_path):
    (tmp_path / "1").mkdir()
    with pytest.raises(FileExistsError, match=r"1 already exists; pass --force .* version 2"):
        export_saved_model(generator, tmp_path, version=1)


def _write_marker(text):
    def write(path):
        (path / "saved_model.pb").write_text(text)
    return write


def test_version_folders_are_numbered_and_replaced_only_with_force(tmp_path):
    out = tmp_path / "colorizer"
    assert next_version(out) == 1
    assert write_version(out, 1, _write_marker("one")) == out / "1"
    write_version(out, 3, _write_marker("three"))
    (out / "notes").mkdir()
    assert next_version(out) == 4
    with pytest.raises(FileExistsError, match="--force"):
        write_version(out, 3, _write_marker("new"))
    assert (out / "3" / "saved_model.pb").read_text() == "three"
    write_version(out, 3, _write_marker("new"), force=True)
    assert (out / "3" / "saved_model.pb").read_text() == "new"
    assert sorted(p.name for p in out.iterdir()) == ["1", "3", "notes"]  # no temporary leftovers


def test_failed_export_leaves_no_partial_version(tmp_path):
    write_version(tmp_path, 1, _write_marker("old"))

    def crash(path):
        (path / "saved_model.pb").write_text("half")
        raise RuntimeError("disk full")

    for version, force in ((1, True), (2, False)):
        with pytest.raises(RuntimeError, match="disk full"):
            write_version(tmp_path, version, crash, force=force)
    assert [p.name for p in tmp_path.iterdir()] == ["1"]
    assert (tmp_path / "1" / "saved_model.pb").read_text() == "old"


def test_version_folder_is_readable_by_other_users(tmp_path):
    old = os.umask(0o022)
    try:
        path = write_version(tmp_path, 1, _write_marker("x"))
    finally:
        os.umask(old)
    assert path.stat().st_mode & 0o755 == 0o755  # a serving container may run as another user


def test_bad_output_folder_and_version(tmp_path):
    (tmp_path / "file").write_text("")
    with pytest.raises(NotADirectoryError, match="is a file"):
        write_version(tmp_path / "file", 1, _write_marker("x"))
    with pytest.raises(ValueError, match="positive integer"):
        write_version(tmp_path, 0, _write_marker("x"))
