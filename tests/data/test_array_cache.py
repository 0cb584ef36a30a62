import os
import warnings

import numpy as np
import pytest
from PIL import Image

from keras_scft.data import array_cache
from keras_scft.data.array_cache import arrays_key, load_arrays_cached
from keras_scft.data.pipeline import load_arrays
from keras_scft.data.sources import ImageFolder


def _folder(path, n=3):
    path.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(n):
        Image.fromarray(rng.integers(0, 256, (10, 12, 3), np.uint8)).save(path / f"{i}.png")
    return path


def _no_decoding(monkeypatch):
    def fail(*args, **kwargs):
        raise AssertionError("decoded although the cache holds the arrays")
    monkeypatch.setattr(array_cache, "load_arrays", fail)


def test_second_load_reads_the_cache_and_returns_the_same_arrays(tmp_path, monkeypatch):
    images = _folder(tmp_path / "images")
    first = load_arrays_cached(ImageFolder(images), 8, folder=tmp_path / "cache", progress=False)
    np.testing.assert_array_equal(first["image"], load_arrays(ImageFolder(images), 8, progress=False)["image"])
    _no_decoding(monkeypatch)
    second = load_arrays_cached(ImageFolder(images), 8, folder=tmp_path / "cache", progress=False)
    assert second.keys() == first.keys()
    np.testing.assert_array_equal(second["image"], first["image"])
    assert isinstance(second["image"], np.memmap) and not second["image"].flags.writeable  # mapped, not read
    batch = second["image"][[2, 0]]
    assert not isinstance(batch, np.memmap) and batch.flags.writeable
    (entry,) = (tmp_path / "cache").iterdir()  # no temporary left
    assert sorted(p.name for p in entry.iterdir()) == ["image.npy"]


def test_key_changes_with_the_files_their_size_and_the_settings(tmp_path):
    images = _folder(tmp_path / "images")
    key = arrays_key(ImageFolder(images), 8, None)
    assert arrays_key(ImageFolder(images), 8, None) == key
    assert arrays_key(ImageFolder(images), 16, None) != key
    assert arrays_key(ImageFolder(images), 8, 2) != key
    stat = os.stat(images / "1.png")
    os.utime(images / "1.png", ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))  # the file was rewritten
    touched = arrays_key(ImageFolder(images), 8, None)
    assert touched != key
    Image.fromarray(np.zeros((10, 12, 3), np.uint8)).save(images / "3.png")  # a new file
    assert arrays_key(ImageFolder(images), 8, None) not in (key, touched)


def test_a_damaged_entry_is_rebuilt(tmp_path):
    images = _folder(tmp_path / "images")
    cache = tmp_path / "cache"
    first = load_arrays_cached(ImageFolder(images), 8, folder=cache, progress=False)
    (entry,) = cache.iterdir()
    npy = entry / "image.npy"
    npy.write_bytes(npy.read_bytes()[:100])
    again = load_arrays_cached(ImageFolder(images), 8, folder=cache, progress=False)
    np.testing.assert_array_equal(again["image"], first["image"])
    np.testing.assert_array_equal(np.load(npy), first["image"])  # and written whole again
    npy.unlink()  # an entry without arrays is rebuilt too
    np.testing.assert_array_equal(
        load_arrays_cached(ImageFolder(images), 8, folder=cache, progress=False)["image"], first["image"])


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_an_unwritable_cache_warns_and_still_returns_the_arrays(tmp_path):
    images = _folder(tmp_path / "images")
    cache = tmp_path / "cache"
    cache.mkdir()
    cache.chmod(0o500)
    try:
        with pytest.warns(UserWarning, match="could not cache the decoded training images"):
            arrays = load_arrays_cached(ImageFolder(images), 8, folder=cache, progress=False)
    finally:
        cache.chmod(0o700)
    assert arrays["image"].shape == (3, 8, 8, 3)


def test_a_cache_path_that_is_a_file_warns_and_still_returns_the_arrays(tmp_path):
    images = _folder(tmp_path / "images")
    blocker = tmp_path / "cache"
    blocker.write_text("not a folder")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        arrays = load_arrays_cached(ImageFolder(images), 8, folder=blocker, progress=False)
    assert arrays["image"].shape == (3, 8, 8, 3)
    assert any("could not cache" in str(w.message) for w in caught)
    assert blocker.read_text() == "not a folder"


def _validation_arrays(n=5):
    rng = np.random.default_rng(1)
    return {"image": rng.integers(0, 256, (n, 16, 16, 3), np.uint8),
            "sketch": rng.integers(0, 256, (n, 16, 16, 1), np.uint8)}


def test_cached_validation_examples_equal_the_built_ones_and_are_read_back(tmp_path, monkeypatch):
    from keras_scft.augment.example import SelfAugment
    from keras_scft.data import pipeline

    arrays, augment = _validation_arrays(), SelfAugment(feature_stride=8, seed=0)
    first = array_cache.validation_examples_cached(arrays, augment, 4, seed=3, folder=tmp_path)
    built = pipeline.validation_examples(arrays, augment, 4, seed=3)
    for cached, fresh in zip(first, built):
        assert cached.keys() == fresh.keys()
        for name in fresh:
            np.testing.assert_array_equal(cached[name], fresh[name])

    def fail(*args, **kwargs):
        raise AssertionError("augmented although the cache holds the examples")
    monkeypatch.setattr(array_cache, "validation_examples", fail)
    again = array_cache.validation_examples_cached(arrays, augment, 4, seed=3, folder=tmp_path)
    for cached, fresh in zip(again, built):
        for name in fresh:
            np.testing.assert_array_equal(cached[name], fresh[name])


def test_validation_key_changes_with_images_settings_count_and_seed():
    from keras_scft.augment.example import SelfAugment

    arrays, augment = _validation_arrays(), SelfAugment(feature_stride=8, seed=0)
    key = array_cache.validation_key(arrays, augment, 4, 0)
    assert array_cache.validation_key(arrays, SelfAugment(feature_stride=8, seed=0), 4, 0) == key
    assert array_cache.validation_key(arrays, SelfAugment(feature_stride=8, seed=0, color_shift=0.5), 4, 0) != key
    assert array_cache.validation_key(arrays, augment, 3, 0) != key
    assert array_cache.validation_key(arrays, augment, 4, 1) != key
    changed = {k: v.copy() for k, v in arrays.items()}
    changed["image"][0, 0, 0, 0] ^= 1
    assert array_cache.validation_key(changed, augment, 4, 0) != key
    later = {k: v.copy() for k, v in arrays.items()}
    later["image"][4] ^= 1  # beyond the count: not part of the examples
    assert array_cache.validation_key(later, augment, 4, 0) == key
