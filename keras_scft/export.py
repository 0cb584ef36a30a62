"""SavedModel export for TensorFlow Serving.

``export_saved_model(model, "exports/colorizer")`` writes ``exports/colorizer/<version>/``, a
SavedModel with three signatures (all batched, any H and W):

``serving_default``
    ``sketch``: uint8 [N, H, W, 1 or 3], white paper = 255 (3 channels are converted to gray
    with the BT.601 weights, as :func:`keras_scft.inference.colorize` does);
    ``reference``: uint8 [N, h, w, 3] RGB -> ``colorized``: uint8 [N, H, W, 3] RGB.
``colorize_float``
    the same with float32 in [-1, 1] in and out, for pipelines that already normalize.
``generate``
    the bare generator at the network size: ``sketch`` float32 [N, S_h, S_w, 1] and
    ``reference`` float32 [N, S_h, S_w, 3] in [-1, 1] -> ``image`` float32 [N, S_h, S_w, 3]
    and ``attention_logits`` float32 [N, n, n] (n = S_h * S_w / stride**2).

Sizes: sketch and reference are resized (bilinear, anti-aliased) to the network size, and the
result back to the sketch's H x W. The network size is fixed at export time when the
generator records its training size or ``size`` is given; otherwise it follows each request:
the sketch's size rounded to a multiple of the stride (16), like ``colorize``.

The resizing and dtype handling are TensorFlow ops under every Keras backend; only the
``generate`` function is backend-specific (a ``tf.function`` under TensorFlow, jax2tf with
StableHLO for CPU and CUDA under JAX, through ``keras.export.ExportArchive``). Malformed
requests fail with the input's name in the error: ``Shape of tensor reference [1,64,64,4] is
not compatible with expected shape [?,?,?,3]``.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Callable
from pathlib import Path

import keras
import tensorflow as tf

from keras_scft.inference import load_generator, model_size
from keras_scft.layers.generator import SCFTGenerator

SERVING_SIGNATURE = "serving_default"
FLOAT_SIGNATURE = "colorize_float"
GENERATE_SIGNATURE = "generate"
OUTPUT_KEY = "colorized"

_LUMA = (0.299, 0.587, 0.114)  # BT.601, as keras_scft.inference and PIL's "L" mode
# jax2tf lowers only for the exporting machine's platform unless told otherwise; lowering for
# both keeps a JAX export from a CPU machine servable on GPU TF Serving.
_JAX_PLATFORMS = ("cpu", "cuda")


def export_saved_model(model, out_dir: str | os.PathLike, version: int | None = None, size=None,
                       force: bool = False) -> Path:
    """Export ``model`` as one version of a TF Serving model folder.

    Args:
        model: ColorizerModel, SCFTGenerator, or a ``.keras`` file of either.
        out_dir: the model's base folder (TF Serving's ``--model_base_path``).
        version: version number (a positive integer); default: one above the highest there.
        size: network size, int or (height, width); default: the generator's training size,
            else each request's sketch size rounded to the stride.
        force: replace an existing version folder.

    Returns:
        The version folder ``out_dir/<version>``, written atomically (a hidden temporary
        folder beside it, then a rename), so TF Serving never sees half an export.

    Raises:
        FileExistsError: the version exists and ``force`` is False (checked before exporting).
    """
    generator = load_generator(model)
    if version is None:
        version = next_version(out_dir)

    def write(path: Path) -> None:
        build_export_archive(generator, size).write_out(str(path), verbose=False)

    return write_version(out_dir, version, write, force=force)


def build_export_archive(generator: SCFTGenerator, size=None) -> keras.export.ExportArchive:
    """The ExportArchive with the three signatures (see the module docstring)."""
    fixed = None if size is None and not generator.image_size else model_size(generator, 0, 0, size)
    stride = generator.stride
    archive = keras.export.ExportArchive()
    archive.track(generator)
    height, width = fixed or (None, None)
    kwargs = {}
    if keras.backend.backend() == "jax":
        jax2tf_kwargs = {"native_serialization_platforms": _JAX_PLATFORMS}
        if fixed is None:  # tell jax2tf the spatial sizes are multiples of the stride
            jax2tf_kwargs["polymorphic_shapes"] = [f"(b, {stride}*h, {stride}*w, 1)",
                                                   f"(b, {stride}*rh, {stride}*rw, 3)"]
        kwargs["jax2tf_kwargs"] = jax2tf_kwargs

    def run_generator(sketch, reference):
        outputs = generator({"sketch": sketch, "reference": reference}, training=False)
        return {"image": outputs["image"], "attention_logits": outputs["attention_logits"]}

    generate = archive.add_endpoint(
        GENERATE_SIGNATURE, run_generator,
        input_signature=[keras.InputSpec(shape=(None, height, width, 1), dtype="float32"),
                         keras.InputSpec(shape=(None, height, width, 3), dtype="float32")],
        **kwargs)

    def colorize_unit(sketch, reference):
        """float32 [N, H, W, 1], [N, h, w, 3] in [-1, 1] -> float32 [N, H, W, 3] in [-1, 1]."""
        shape = tf.shape(sketch)
        net = tf.constant(fixed, tf.int32) if fixed else _round_to_stride(shape[1:3], stride)
        image = generate(_resize(sketch, net), _resize(reference, net))["image"]
        return tf.clip_by_value(_resize(tf.cast(image, tf.float32), shape[1:3]), -1.0, 1.0)

    @tf.function(input_signature=[tf.TensorSpec([None, None, None, None], tf.uint8, name="sketch"),
                                  tf.TensorSpec([None, None, None, 3], tf.uint8, name="reference")])
    def serve_uint8(sketch, reference):
        sketch, reference = _checked(sketch, reference)
        gray = tf.round(_gray(tf.cast(sketch, tf.float32)))
        image = colorize_unit(gray / 127.5 - 1.0, tf.cast(reference, tf.float32) / 127.5 - 1.0)
        return {OUTPUT_KEY: tf.cast(tf.round((image + 1.0) * 127.5), tf.uint8)}

    @tf.function(input_signature=[tf.TensorSpec([None, None, None, None], tf.float32, name="sketch"),
                                  tf.TensorSpec([None, None, None, 3], tf.float32, name="reference")])
    def serve_float(sketch, reference):
        sketch, reference = _checked(sketch, reference)
        return {OUTPUT_KEY: colorize_unit(_gray(sketch), reference)}

    for name, function in ((SERVING_SIGNATURE, serve_uint8), (FLOAT_SIGNATURE, serve_float)):
        function.get_concrete_function()  # trace now: add_endpoint takes traced tf.functions
        archive.add_endpoint(name, function)
    return archive


def next_version(out_dir: str | os.PathLike) -> int:
    """One above the highest numeric subfolder of ``out_dir`` (1 when there is none)."""
    out_dir = Path(out_dir)
    if not out_dir.is_dir():
        return 1
    return max((int(p.name) for p in out_dir.iterdir() if p.is_dir() and p.name.isdigit()), default=0) + 1


def write_version(out_dir: str | os.PathLike, version: int, write: Callable[[Path], None],
                  force: bool = False) -> Path:
    """Create ``out_dir/<version>`` atomically: ``write(tmp)`` fills a hidden folder, then a rename.

    The temporary folder (``.<version>.*.partial``, ignored by TF Serving, which only loads
    numeric names) is removed if ``write`` fails; an existing version is only replaced when
    ``force`` is set, and then only after the new one is complete (two renames: the old
    folder is moved aside, the new one moved in).

    Raises:
        FileExistsError: ``out_dir/<version>`` exists and ``force`` is False.
        NotADirectoryError: ``out_dir`` is a file.
    """
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise ValueError(f"version must be a positive integer, got {version!r}")
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise NotADirectoryError(f"export folder {out_dir} is a file; pass a folder path")
    target = out_dir / str(version)
    if target.exists() and not force:
        raise FileExistsError(f"{target} already exists; pass --force to replace it, or leave out "
                              f"--version to write version {next_version(out_dir)}")
    out_dir.mkdir(parents=True, exist_ok=True)
    tmp = _hidden_path(out_dir, version, "partial")
    tmp.mkdir()  # honours the umask (tempfile.mkdtemp's 0700 would lock out a serving user)
    try:
        write(tmp)
        if target.exists():
            if not force:  # created while we were exporting
                raise FileExistsError(f"{target} appeared during the export; pass --force to replace it")
            old = _hidden_path(out_dir, version, "old")
            os.rename(target, old)
            try:
                os.rename(tmp, target)
            except BaseException:
                os.rename(old, target)
                raise
            shutil.rmtree(old)
        else:
            os.rename(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target


def _hidden_path(parent: Path, version: int, kind: str) -> Path:
    """An unused name ``parent/.<version>.<random>.<kind>`` (TF Serving skips non-numeric names)."""
    return parent / f".{version}.{uuid.uuid4().hex[:8]}.{kind}"


def _checked(sketch, reference):
    """The inputs, after run-time checks whose messages name the bad input."""
    sketch = tf.ensure_shape(sketch, [None, None, None, None])
    reference = tf.ensure_shape(reference, [None, None, None, 3])
    channels = tf.shape(sketch)[3]
    checks = [
        tf.debugging.assert_equal(tf.logical_or(channels == 1, channels == 3), True,
                                  message="sketch must have 1 (gray) or 3 (RGB) channels"),
        tf.debugging.assert_equal(tf.shape(sketch)[0], tf.shape(reference)[0],
                                  message="sketch and reference must have the same batch size N"),
    ]
    with tf.control_dependencies(checks):
        return tf.identity(sketch), tf.identity(reference)


def _gray(sketch):
    """float32 [N, H, W, 1 or 3] -> [N, H, W, 1]: RGB sketches become BT.601 luminance."""
    return tf.cond(tf.shape(sketch)[3] == 3,
                   lambda: tf.reduce_sum(sketch * tf.constant(_LUMA), axis=-1, keepdims=True),
                   lambda: sketch[..., :1])


def _round_to_stride(size, stride: int):
    """int32 [2] (height, width) -> nearest multiples of ``stride``, at least ``stride``."""
    steps = tf.round(tf.cast(size, tf.float32) / stride)  # half to even, like Python's round
    return tf.maximum(stride, tf.cast(steps, tf.int32) * stride)


def _resize(images, size):
    """Bilinear, anti-aliased resize, as ``keras.ops.image.resize`` in ``colorize``."""
    return tf.image.resize(images, size, method="bilinear", antialias=True)
