"""benchmarks/pack_images.py: lossless packing of saved colorizations for the device transfer."""

import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))

from pack_images import pack, unpack  # noqa: E402


def _folder(path: Path, seed: int) -> dict:
    path.mkdir()
    rng = np.random.default_rng(seed)
    images = {f"{i:03d}": rng.integers(0, 256, (8, 8, 3), dtype=np.uint8) for i in range(5)}
    for name, image in images.items():
        Image.fromarray(image).save(path / f"{name}.png")
    return images


def test_round_trip_is_lossless_and_sorted_across_chunks(tmp_path):
    images = _folder(tmp_path / "a", 0)
    written = pack(str(tmp_path / "a"), str(tmp_path / "run1-cross"), limit_mb=1e-4)  # one image a chunk
    assert len(written) == 5
    names, arrays = unpack(str(tmp_path / "run1-cross-*.npz"))
    assert names == sorted(images)
    for name, array in zip(names, arrays):
        np.testing.assert_array_equal(array, images[name])


def test_a_pattern_over_two_runs_or_none_is_a_clear_error(tmp_path):
    _folder(tmp_path / "a", 0)
    _folder(tmp_path / "b", 1)
    pack(str(tmp_path / "a"), str(tmp_path / "seed-0-cross"))
    pack(str(tmp_path / "b"), str(tmp_path / "seed-1-cross"))
    with pytest.raises(ValueError, match="more than one packed set"):
        unpack(str(tmp_path / "*-cross-*.npz"))
    with pytest.raises(FileNotFoundError, match="no packed images match"):
        unpack(str(tmp_path / "missing-*.npz"))
