import warnings

import numpy as np
import pytest
from PIL import Image

from keras_scft.data import (
    ImageFolder,
    OpenMojiSource,
    PairedFolders,
    Pix2PixFolder,
    SkippedImageWarning,
    open_source,
    source_from_spec,
)
from keras_scft.data.openmoji import skin_tone_group_key


def _save(path, pixels, **kwargs):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path, **kwargs)


def _solid(color, shape=(6, 6)):
    return np.broadcast_to(np.array(color, np.uint8), shape + (3,)).copy()


def _truncated_jpeg(path):
    noise = np.random.default_rng(0).integers(0, 255, (64, 64, 3), np.uint8)
    _save(path, noise, quality=95)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


# ---- ImageFolder -----------------------------------------------------------------------------

def test_folder_finds_nested_mixed_extensions_in_sorted_order(tmp_path):
    _save(tmp_path / "b.PNG", _solid((255, 0, 0)))
    _save(tmp_path / "a" / "z.jpg", _solid((0, 255, 0)))
    _save(tmp_path / "a" / "deep" / "y.webp", _solid((0, 0, 255)))
    _save(tmp_path / "c.bmp", _solid((9, 9, 9)))
    _save(tmp_path / "d.JPEG", _solid((1, 1, 1)))
    (tmp_path / "notes.txt").write_text("not an image")
    _save(tmp_path / ".hidden" / "h.png", _solid((5, 5, 5)))
    source = ImageFolder(tmp_path)
    names = [record["name"] for record in source]
    assert names == ["a/deep/y", "a/z", "b", "c", "d"]
    assert len(source) == 5 and source.skipped == 0
    record = source[2]
    assert record["image"].shape == (6, 6, 3) and record["image"].dtype == np.uint8
    assert record["image"][0, 0].tolist() == [255, 0, 0]
    assert "sketch" not in record


def test_corrupt_files_are_skipped_counted_and_warned(tmp_path):
    _save(tmp_path / "good1.png", _solid((10, 20, 30)))
    _save(tmp_path / "good2.jpg", _solid((10, 20, 30)))
    (tmp_path / "garbage.png").write_bytes(b"\x89PNG but not really")
    (tmp_path / "empty.jpg").write_bytes(b"")
    _truncated_jpeg(tmp_path / "truncated.jpg")
    with pytest.warns(SkippedImageWarning) as caught:
        source = ImageFolder(tmp_path)
    messages = [str(w.message) for w in caught]
    assert len(messages) == 2 and "garbage.png" in messages[1] and "empty.jpg" in messages[0]
    assert source.skipped == 2  # garbage + empty, found at listing time
    assert len(source) == 3
    with pytest.warns(SkippedImageWarning, match="truncated.jpg"):
        names = [record["name"] for record in source]
    assert names == ["good1", "good2"]
    assert source.skipped == 3
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a second pass neither re-warns nor re-counts
        assert len(list(source)) == 2
    assert source.skipped == 3
    assert {p.name for p in source.skipped_files} == {"garbage.png", "empty.jpg", "truncated.jpg"}


def test_empty_folder_error_lists_extensions(tmp_path):
    (tmp_path / "readme.md").write_text("no images here")
    with pytest.raises(ValueError) as error:
        ImageFolder(tmp_path)
    message = str(error.value)
    assert f"folder {tmp_path} has no images" in message
    assert ".png .jpg .jpeg .webp .bmp" in message


def test_missing_folder_error_names_the_path(tmp_path):
    with pytest.raises(FileNotFoundError, match=f"{tmp_path / 'nowhere'} does not exist"):
        ImageFolder(tmp_path / "nowhere")


# ---- Pix2PixFolder ---------------------------------------------------------------------------

def _edges2shoes_like(path, height=32):
    """2:1 JPEG: left half black line on white, right half a solid color photo."""
    pixels = np.full((height, 2 * height, 3), 255, np.uint8)
    pixels[:, height // 2 - 2: height // 2 + 2] = 0  # vertical black line in the left half
    pixels[:, height:] = (200, 40, 40)
    _save(path, pixels, quality=95)


def test_pix2pix_splits_halves_into_sketch_and_image(tmp_path):
    _edges2shoes_like(tmp_path / "1_AB.jpg")
    record = Pix2PixFolder(tmp_path)[0]
    sketch, image = record["sketch"], record["image"]
    assert sketch.shape == (32, 32, 1) and image.shape == (32, 32, 3)
    assert sketch[0, 0, 0] >= 250  # white background
    assert sketch[:, 16, 0].max() < 60  # the dark line stayed dark
    assert np.abs(image[:, 2:].astype(int) - (200, 40, 40)).max() < 12  # JPEG bleeds at the seam
    assert record["name"] == "1_AB"


def test_pix2pix_right_side_and_dark_background_sketch(tmp_path):
    pixels = np.zeros((16, 32, 3), np.uint8)  # right half: white line on black
    pixels[:, 24] = 255
    pixels[:, :16] = (0, 120, 0)
    _save(tmp_path / "x.png", pixels)
    record = Pix2PixFolder(tmp_path, sketch_side="right")[0]
    assert record["sketch"][0, 0, 0] == 255  # inverted to a white background
    assert record["sketch"][0, 8, 0] == 0  # the line is dark
    assert record["image"][0, 0].tolist() == [0, 120, 0]
    with pytest.raises(ValueError, match="sketch_side"):
        Pix2PixFolder(tmp_path, sketch_side="top")


# ---- PairedFolders ---------------------------------------------------------------------------

def test_paired_matches_by_stem_and_counts_unmatched(tmp_path):
    sketches, colors = tmp_path / "sketch", tmp_path / "color"
    for stem in ("001", "002", "only_sketch"):
        _save(sketches / f"{stem}.png", _solid((255, 255, 255), (8, 8)))
    for stem, color in (("001", (255, 0, 0)), ("002", (0, 255, 0)), ("only_color", (0, 0, 0))):
        _save(colors / f"{stem}.jpg", _solid(color, (16, 16)), quality=95)
    with pytest.warns(SkippedImageWarning, match="2 files"):
        source = PairedFolders(sketches, colors)
    assert source.unmatched == ["only_color", "only_sketch"]
    records = list(source)
    assert [r["name"] for r in records] == ["001", "002"]
    assert records[1]["image"][0, 0, 1] > 240
    assert records[0]["sketch"].shape == (16, 16, 1)  # resized to its color image


def test_paired_without_any_match_explains(tmp_path):
    _save(tmp_path / "s" / "a.png", _solid((0, 0, 0)))
    _save(tmp_path / "c" / "b.png", _solid((0, 0, 0)))
    with pytest.raises(ValueError, match="no file names match"):
        PairedFolders(tmp_path / "s", tmp_path / "c")


# ---- OpenMojiSource (committed sample) -------------------------------------------------------

def test_openmoji_sample_splits_are_disjoint_and_complete(sample_dir):
    splits = {split: OpenMojiSource(sample_dir, split) for split in ("train", "val", "test")}
    names = {split: set(source.names) for split, source in splits.items()}
    assert not (names["train"] & names["val"] or names["train"] & names["test"]
                or names["val"] & names["test"])
    assert len(names["test"]) >= len(names["train"])  # sample is mostly test
    assert sum(map(len, names.values())) == 48
    assert all(source.skipped == 0 for source in splits.values())


def test_openmoji_sample_keeps_skin_tone_variants_together(sample_dir):
    split_of_key: dict[str, set[str]] = {}
    for split in ("train", "val", "test"):
        for name in OpenMojiSource(sample_dir, split).names:
            split_of_key.setdefault(skin_tone_group_key(name), set()).add(split)
    assert all(len(splits) == 1 for splits in split_of_key.values())
    test_names = OpenMojiSource(sample_dir, "test").names
    families = {}
    for name in test_names:
        families.setdefault(skin_tone_group_key(name), []).append(name)
    assert max(map(len, families.values())) == 6  # a full family (base + 5 tones) is there


def test_openmoji_records_are_line_art_and_color(sample_dir):
    record = OpenMojiSource(sample_dir, "test")[0]
    image, sketch = record["image"], record["sketch"]
    assert image.shape == (128, 128, 3) and image.dtype == np.uint8
    assert sketch.shape == (128, 128, 1) and sketch.dtype == np.uint8
    assert sketch[0, 0, 0] == 255 and image[0, 0].tolist() == [255, 255, 255]
    assert (sketch < 128).mean() > 0.01  # has ink
    assert (image.std(axis=-1) > 10).mean() > 0.01  # has color


def test_openmoji_missing_manifest_says_how_to_prepare(tmp_path):
    with pytest.raises(FileNotFoundError, match="prepare_data.py openmoji"):
        OpenMojiSource(tmp_path)
    with pytest.raises(ValueError, match="split"):
        OpenMojiSource(tmp_path, split="validation")


def test_openmoji_missing_png_is_skipped(sample_dir, tmp_path):
    import shutil

    shutil.copytree(sample_dir, tmp_path / "s")
    first = OpenMojiSource(tmp_path / "s", "val").names[0]
    (tmp_path / "s" / "line" / f"{first}.png").unlink()
    with pytest.warns(SkippedImageWarning, match=first):
        source = OpenMojiSource(tmp_path / "s", "val")
    assert first not in source.names and source.skipped == 1 and len(source) == 7


# ---- fixed-size iteration --------------------------------------------------------------------

def test_as_numpy_iterator_gives_fixed_size_deterministic_batches(sample_dir):
    source = OpenMojiSource(sample_dir, "test")
    records = list(source.as_numpy_iterator(64, shuffle=True, seed=3))
    assert len(records) == len(source)
    assert all(r["image"].shape == (64, 64, 3) and r["sketch"].shape == (64, 64, 1)
               and r["image"].dtype == np.uint8 for r in records)
    assert records[0]["image"].flags.writeable and records[0]["sketch"].flags.writeable
    order = [r["name"] for r in records]
    assert order == [r["name"] for r in source.as_numpy_iterator(64, shuffle=True, seed=3)]
    assert order != [r["name"] for r in source.as_numpy_iterator(64, shuffle=True, seed=4)]
    assert [r["name"] for r in source.as_numpy_iterator(64)] == sorted(order)


def test_as_numpy_iterator_crops_sketch_and_image_alike(tmp_path):
    color = np.full((30, 60, 3), 255, np.uint8)
    color[:, 38:44] = (0, 0, 200)  # a bar right of center, inside the center crop
    sketch = np.full((30, 60), 255, np.uint8)
    sketch[:, 38:44] = 0
    _save(tmp_path / "c" / "x.png", color)
    _save(tmp_path / "s" / "x.png", sketch)
    record = next(PairedFolders(tmp_path / "s", tmp_path / "c").as_numpy_iterator(15))
    image = record["image"].astype(float)
    bar_in_image = (image[..., 2] - image[..., 0]) / 200  # 1 on the bar, 0 off it
    bar_in_sketch = (255 - record["sketch"][..., 0].astype(float)) / 255
    assert np.abs(bar_in_image - bar_in_sketch).max() < 0.1
    # the bar covers crop columns 23-28 of 30, i.e. output columns 11.5-14.5 of 15
    assert bar_in_sketch[:, 12:14].min() > 0.9 and bar_in_sketch[:, :11].max() < 0.1


# ---- factory ---------------------------------------------------------------------------------

def test_open_source_builds_each_type(tmp_path, sample_dir):
    _save(tmp_path / "img" / "a.png", _solid((1, 2, 3)))
    assert isinstance(open_source({"type": "folder", "root": str(tmp_path / "img")}), ImageFolder)
    assert isinstance(open_source({"type": "pix2pix", "root": tmp_path / "img"}), Pix2PixFolder)
    source = open_source({"type": "openmoji", "root": str(sample_dir), "split": "val"})
    assert isinstance(source, OpenMojiSource) and len(source) == 8
    paired = source_from_spec("paired", sketch_dir=tmp_path / "img", color_dir=tmp_path / "img")
    assert isinstance(paired, PairedFolders)


def test_open_source_errors_name_the_problem(tmp_path):
    with pytest.raises(ValueError, match="allowed: folder, pix2pix, paired, openmoji"):
        open_source({"type": "lmdb", "root": "x"})
    with pytest.raises(ValueError, match=r"unknown option\(s\) \['rot'\]; allowed: root"):
        open_source({"type": "folder", "rot": "x"})
    with pytest.raises(ValueError, match=r"needs option\(s\) \['color_dir'\]"):
        open_source({"type": "paired", "sketch_dir": "x"})
    with pytest.raises(ValueError, match='needs a "type" field'):
        open_source({"root": "x"})


@pytest.mark.parametrize("workers", [1, 3])
def test_as_numpy_iterator_threads_keep_order_and_skip_corrupt_files(tmp_path, workers):
    for i in range(12):
        _save(tmp_path / f"img{i:02d}.png", _solid((10 * i, 20, 30)))
    _truncated_jpeg(tmp_path / "img05b.jpg")
    source = ImageFolder(tmp_path)
    with pytest.warns(SkippedImageWarning, match="img05b.jpg"):
        records = list(source.as_numpy_iterator(8, workers=workers))
    assert [r["name"] for r in records] == [f"img{i:02d}" for i in range(12)]
    assert [int(r["image"][0, 0, 0]) for r in records] == [10 * i for i in range(12)]
    assert source.skipped == 1
