"""Image files whose headers parsed before, so that a source need not open them on every start.

A source checks every file's header when it is built (``ImageSource._readable``): for OpenMoji's
training and validation splits that is 7,432 PNG files opened with Pillow, 0.25-0.35 s of a
second start's 0.4 s data phase on a 2-core CPU (the decoded images come from the array cache;
docs/benchmarks.md, "Image headers checked once"). The files that passed are
remembered here per folder (``<keras_scft cache>/headers/<digest of the folder>.json``: name ->
size and modification time); a file whose size or modification time changed is checked again,
and files that failed are not remembered (they are checked, and warned about, every time).

The cache only saves time: an unreadable or unwritable entry is ignored, and concurrent writers
may drop each other's additions (those files are checked again next time).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections import defaultdict
from pathlib import Path

from keras_scft.data.io import write_atomic
from keras_scft.utils.paths import cache_dir

FORMAT = 1  # bump when what passes the header check changes


def _signature(path: Path) -> list[int] | None:
    """[size, modification time in ns] of ``path``, None when it cannot be stat'ed."""
    try:
        stat = os.stat(path)
    except OSError:
        return None
    return [stat.st_size, stat.st_mtime_ns]


def _entry(folder: Path) -> Path:
    name = hashlib.sha256(os.path.abspath(folder).encode()).hexdigest()[:32]
    return cache_dir("headers") / f"{name}.json"


def _read(entry: Path) -> dict[str, list[int]]:
    try:
        content = json.loads(entry.read_text())
    except (OSError, ValueError):
        return {}
    files = content.get("files") if isinstance(content, dict) and content.get("format") == FORMAT else None
    return files if isinstance(files, dict) else {}


def _by_folder(paths: list[Path]) -> dict[Path, list[Path]]:
    folders = defaultdict(list)
    for path in paths:
        path = path if isinstance(path, Path) else Path(path)  # (re-wrapping a Path parses it again)
        folders[path.parent].append(path)
    return folders


def known_readable(paths: list[Path]) -> set[Path]:
    """Those of ``paths`` whose header passed before and that have not changed since."""
    known = set()
    for folder, members in _by_folder(paths).items():
        try:
            remembered = _read(_entry(folder))
        except OSError:  # no cache folder
            continue
        known.update(path for path in members
                     if path.name in remembered and remembered[path.name] == _signature(path))
    return known


def remember_readable(paths: list[Path]) -> None:
    """Record that the headers of ``paths`` parsed (as they are now)."""
    for folder, members in _by_folder(paths).items():
        try:
            entry = _entry(folder)
            files = _read(entry)
            for path in members:
                signature = _signature(path)
                if signature is not None:
                    files[path.name] = signature
            write_atomic(entry, json.dumps({"format": FORMAT, "files": files}).encode())
        except OSError:  # an unwritable cache costs the next start the checks, nothing else
            continue
