"""Headers checked once (keras_scft.data.header_cache): a source built again opens only the
files that changed or failed before, and finds the same files."""

import os
import warnings

import numpy as np
import pytest
from PIL import Image

from keras_scft.data import ImageFolder, OpenMojiSource, SkippedImageWarning
from keras_scft.data import io, sources


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_SCFT_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache" / "headers"


@pytest.fixture
def opened(monkeypatch):
    """The files whose header the sources open, in order."""
    paths = []

    def check(path):
        paths.append(os.path.basename(path))
        return io.check_image_header(path)

    monkeypatch.setattr(sources, "check_image_header", check)
    return paths


def _png(path, value):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((4, 4, 3), value, np.uint8)).save(path)


def test_a_second_source_opens_only_what_changed_or_failed_before(tmp_path, cache, opened):
    images = tmp_path / "images"
    for name in "abc":
        _png(images / f"{name}.png", 10)
    (images / "bad.png").write_bytes(b"not a png")
    with pytest.warns(SkippedImageWarning, match="bad.png"):
        first = ImageFolder(images)
    assert sorted(opened) == ["a.png", "b.png", "bad.png", "c.png"] and len(list(cache.glob("*.json"))) == 1
    opened.clear()
    Image.fromarray(np.full((5, 4, 3), 20, np.uint8)).save(images / "b.png")  # another size
    os.utime(images / "c.png", ns=(0, 0))  # same bytes, another modification time
    with pytest.warns(SkippedImageWarning, match="bad.png"):  # still checked, still warned about
        second = ImageFolder(images)
    assert sorted(opened) == ["b.png", "bad.png", "c.png"]
    assert second.paths == first.paths and second.files == first.files and second.skipped == 1
    opened.clear()
    (images / "a.png").unlink()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        third = ImageFolder(images)
    assert [p.name for p in third.paths] == ["b.png", "c.png"] and opened == ["bad.png"]
    assert [str(w.message) for w in caught if "bad.png" in str(w.message)]


def test_openmoji_pairs_are_checked_once_and_found_again_alike(sample_dir, cache, opened):
    first = OpenMojiSource(sample_dir, "train")
    assert len(opened) == 2 * len(first.names) > 0
    opened.clear()
    second = OpenMojiSource(sample_dir, "train")
    assert opened == [] and second.names == first.names and second.files == first.files


def test_a_damaged_or_unwritable_cache_only_costs_the_checks(tmp_path, cache, opened, monkeypatch):
    images = tmp_path / "images"
    _png(images / "a.png", 10)
    ImageFolder(images)
    (entry,) = cache.glob("*.json")
    entry.write_text("{not json")
    opened.clear()
    assert [p.name for p in ImageFolder(images).paths] == ["a.png"] and opened == ["a.png"]
    opened.clear()
    assert [p.name for p in ImageFolder(images).paths] == ["a.png"] and opened == []  # rewritten whole

    def unwritable(path, data):
        raise OSError("read-only file system")

    monkeypatch.setattr("keras_scft.data.header_cache.write_atomic", unwritable)
    _png(images / "b.png", 30)
    opened.clear()
    assert [p.name for p in ImageFolder(images).paths] == ["a.png", "b.png"] and opened == ["b.png"]
