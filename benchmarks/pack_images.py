"""Pack a folder of PNGs into lossless-WebP .npz chunks under a size limit, and unpack them.

The device tool returns at most 8 files of 16 MiB; lossless WebP keeps every pixel (FID on
the unpacked images equals FID on the originals) at about 2/3 of the PNG size. Images are
encoded on a thread pool (Pillow releases the GIL while encoding): one at a time, 454
images took ~60 s on a busy device host.

    python benchmarks/pack_images.py pack FOLDER OUT_PREFIX [--limit-mb 15]
    python benchmarks/pack_images.py unpack 'OUT_PREFIX-*.npz' FOLDER
"""

from __future__ import annotations

import glob
import io
import os
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image


def pack(folder: str, prefix: str, limit_mb: float = 15.0) -> list[str]:
    names, blobs, size, written, part = [], [], 0, [], 0

    def flush():
        nonlocal names, blobs, size, part
        if names:
            path = f"{prefix}-{part}.npz"
            packed = np.empty(len(blobs), dtype=object)  # np.array(blobs, dtype=object) would make
            for i, blob in enumerate(blobs):             # a 2-D array of one blob or of equal-length ones
                packed[i] = blob
            np.savez(path, names=np.array(names), blobs=packed)
            written.append(path)
            names, blobs, size, part = [], [], 0, part + 1

    paths = sorted(Path(folder).glob("*.png"))
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        encoded = pool.map(_webp, paths)
        for path, data in zip(paths, encoded):
            if size + len(data) > limit_mb * 1e6:
                flush()
            names.append(path.stem)
            blobs.append(np.frombuffer(data, np.uint8))
            size += len(data)
    flush()
    return written


def _webp(path: Path) -> bytes:
    """The image at ``path`` as lossless WebP bytes."""
    buffer = io.BytesIO()
    Image.open(path).convert("RGB").save(buffer, format="WEBP", lossless=True, quality=100, method=4)
    return buffer.getvalue()


def unpack(pattern: str) -> tuple[list[str], np.ndarray]:
    """All images of the chunks matching ``pattern``, sorted by name: (names, uint8 [N, H, W, 3]).

    The chunks must be one packed set: a name found twice (a pattern that matches the chunks
    of two runs) is an error that names both files.
    """
    paths = sorted(glob.glob(pattern))
    if not paths:
        raise FileNotFoundError(f"no packed images match {pattern!r}")
    items, seen = {}, {}
    for path in paths:
        chunk = np.load(path, allow_pickle=True)
        for name, blob in zip(chunk["names"], chunk["blobs"]):
            name = str(name)
            if name in seen:
                raise ValueError(f"image {name!r} is in both {seen[name]} and {path}: {pattern!r} matches "
                                 "more than one packed set; give each run its own pattern")
            seen[name] = path
            items[name] = np.asarray(Image.open(io.BytesIO(blob.tobytes())).convert("RGB"))
    names = sorted(items)
    return names, np.stack([items[n] for n in names])


if __name__ == "__main__":
    command = sys.argv[1]
    if command == "pack":
        limit = float(sys.argv[sys.argv.index("--limit-mb") + 1]) if "--limit-mb" in sys.argv else 15.0
        print("\n".join(pack(sys.argv[2], sys.argv[3], limit)))
    elif command == "unpack":
        names, images = unpack(sys.argv[2])
        out = Path(sys.argv[3])
        out.mkdir(parents=True, exist_ok=True)
        for name, image in zip(names, images):
            Image.fromarray(image).save(out / f"{name}.png")
        print(f"{len(names)} images -> {out}")
    else:
        sys.exit(__doc__)
