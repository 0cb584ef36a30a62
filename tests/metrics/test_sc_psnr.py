"""SC-PSNR and the SPair-71k reader, on tests/fixtures/spair_mini (see make_spair_mini.py)."""

import json
import pathlib
import shutil

import numpy as np
import pytest

from keras_scft.data.spair import read_spair_pairs
from keras_scft.metrics.sc_psnr import (
    MAX_PSNR,
    keypoint_patches,
    keypoint_psnr,
    resized_pair,
    sc_psnr_scores,
    scale_keypoints,
    summarize_sc_psnr,
    xdog_line_art,
)

SPAIR_MINI = pathlib.Path(__file__).resolve().parents[1] / "fixtures" / "spair_mini"
SIZE = 128


# ---- reader ----------------------------------------------------------------------------------

def test_reader_parses_the_fixture_with_the_paper_categories_by_default():
    pairs = read_spair_pairs(SPAIR_MINI)
    assert [p.category for p in pairs] == ["cat", "cat", "dog", "dog", "car", "car"]
    pair = pairs[0]
    assert pair.name == "000001-1F920_1s-1F920_1t-cat"
    assert pair.source_image == SPAIR_MINI / "JPEGImages" / "cat" / "1F920_1s.jpg"
    assert pair.target_image.is_file()
    annotation = json.loads((SPAIR_MINI / "PairAnnotation" / "test" / f"{pair.name}.json").read_text())
    np.testing.assert_array_equal(pair.source_keypoints, annotation["src_kps"])
    np.testing.assert_array_equal(pair.target_keypoints, annotation["trg_kps"])
    assert pair.source_keypoints.shape == (8, 2) and pair.source_keypoints.dtype == np.float32


def test_category_filter_split_and_limit():
    assert [p.category for p in read_spair_pairs(SPAIR_MINI, categories=["bird"])] == ["bird"]
    assert len(read_spair_pairs(SPAIR_MINI, categories=None)) == 7
    assert [p.category for p in read_spair_pairs(SPAIR_MINI, categories=["dog", "cat"], limit=1)] == [
        "dog", "cat"]
    for split in ("trn", "train"):
        assert [p.name for p in read_spair_pairs(SPAIR_MINI, split, ["cat"])] == [
            "000008-1F31F_8s-1F31F_8t-cat"]


def test_reader_errors_name_the_problem(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere.*does not exist"):
        read_spair_pairs(tmp_path / "nowhere")
    with pytest.raises(FileNotFoundError, match="no PairAnnotation"):
        read_spair_pairs(tmp_path)
    with pytest.raises(FileNotFoundError, match=r"val does not exist \(found: test, trn\)"):
        read_spair_pairs(SPAIR_MINI, "val")
    with pytest.raises(ValueError, match="must be one of"):
        read_spair_pairs(SPAIR_MINI, "testing")
    with pytest.raises(ValueError, match="category horse.*categories there: bird, car, cat, dog"):
        read_spair_pairs(SPAIR_MINI, categories=["cat", "horse"])


def test_reader_rejects_broken_pair_files(tmp_path):
    root = tmp_path / "SPair-71k"
    shutil.copytree(SPAIR_MINI, root, ignore=shutil.ignore_patterns("*.py"))
    path = next((root / "PairAnnotation" / "trn").glob("*.json"))
    annotation = json.loads(path.read_text())

    path.write_text(json.dumps({**annotation, "trg_kps": annotation["trg_kps"][:-1]}))
    with pytest.raises(ValueError, match="8 points but \"trg_kps\" has 7"):
        read_spair_pairs(root, "trn")
    del annotation["src_kps"]
    path.write_text(json.dumps(annotation))
    with pytest.raises(ValueError, match=f"{path.name} lacks field.*src_kps"):
        read_spair_pairs(root, "trn")
    path.write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        read_spair_pairs(root, "trn")
    (root / "JPEGImages" / "cat" / "1F920_1s.jpg").unlink()
    with pytest.raises(FileNotFoundError, match="1F920_1s.jpg, which does not exist"):
        read_spair_pairs(root, "test")


# ---- geometry ------------------------------------------------------------------------------

def test_keypoints_scale_with_pixel_centres():
    points = np.array([[0.0, 0.0], [99.0, 199.0], [49.5, 99.5]])
    scaled = scale_keypoints(points, (200, 100), (50, 50))  # (height, width) -> half x, quarter y
    np.testing.assert_allclose(scaled, [[-0.25, -0.375], [49.25, 49.375], [24.5, 24.5]])


def test_patches_centre_on_the_keypoint_and_shift_inside_the_frame():
    height, width, p = 20, 30, 6
    rows, cols = np.mgrid[:height, :width]
    image = np.stack([rows, cols], axis=-1)  # each pixel holds its (row, col)
    patches = keypoint_patches(image, np.array([[10.2, 7.6], [0.0, 0.0], [29.0, 19.0]]), p)
    assert patches.shape == (3, p, p, 2)
    assert tuple(patches[0, p // 2, p // 2]) == (8, 10)  # nearest pixel at the centre index
    assert tuple(patches[1, 0, 0]) == (0, 0)  # top-left corner: shifted inside
    assert tuple(patches[2, -1, -1]) == (height - 1, width - 1)
    with pytest.raises(ValueError, match="does not fit"):
        keypoint_patches(image, np.zeros((1, 2)), 21)


def test_identical_images_at_identical_keypoints_give_the_capped_psnr():
    image = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    keypoints = np.array([[0, 0], [63, 63], [20.4, 40.7]], np.float32)
    values = keypoint_psnr(image, image.copy(), keypoints, keypoints, 8)
    np.testing.assert_array_equal(values, [MAX_PSNR] * 3)
    moved = keypoint_psnr(image, image, keypoints, keypoints[::-1], 8)
    assert np.all(np.isfinite(moved)) and moved[0] < 20


# ---- the metric on the fixture -------------------------------------------------------------

def _oracle_and_pairs():
    """The fixture's pairs and an oracle colorizer returning each reference's source image,
    i.e. the reference warped exactly into the sketch's geometry."""
    pairs = read_spair_pairs(SPAIR_MINI)
    by_reference = {}
    for pair in pairs:
        source, target, _, _ = resized_pair(pair, SIZE)
        by_reference[target.tobytes()] = source

    def oracle(sketch, reference):
        assert sketch.shape == (len(reference), SIZE, SIZE, 1) and sketch.dtype == np.uint8
        return np.stack([by_reference[r.tobytes()] for r in reference])

    return oracle, pairs


def test_oracle_colorizer_scores_high_and_wrong_ones_low():
    oracle, pairs = _oracle_and_pairs()
    good = summarize_sc_psnr(sc_psnr_scores(oracle, pairs, SIZE, batch_size=4))
    gray = summarize_sc_psnr(sc_psnr_scores(lambda s, r: np.full_like(r, 128), pairs, SIZE))
    copied = summarize_sc_psnr(sc_psnr_scores(lambda s, r: r, pairs, SIZE))  # ignores geometry
    assert good["mean"] > 25.0
    assert all(c["mean"] > 20.0 for c in good["per_category"].values())
    assert gray["mean"] < 12.0 and copied["mean"] < good["mean"] - 10.0


def test_summary_pools_keypoints():
    oracle, pairs = _oracle_and_pairs()
    scores = sc_psnr_scores(oracle, pairs, SIZE, patch_size=12, batch_size=5)
    summary = summarize_sc_psnr(scores)
    assert summary["n_pairs"] == 6 and summary["n_keypoints"] == 48
    assert summary["mean"] == pytest.approx(np.mean(np.concatenate([s.psnr for s in scores])))
    assert list(summary["per_category"]) == ["cat", "dog", "car"]
    assert summary["per_category"]["dog"]["n_keypoints"] == 16
    assert [p["name"] for p in summary["per_pair"]] == [p.name for p in pairs]
    # batching does not change anything
    again = summarize_sc_psnr(sc_psnr_scores(oracle, pairs, SIZE, patch_size=12, batch_size=2))
    assert again == summary
    with pytest.raises(ValueError, match="no SPair"):
        summarize_sc_psnr([])


@pytest.mark.multi_backend
def test_evaluation_sketch_is_fixed_binary_line_art():
    images = np.full((2, 32, 32, 3), 255, np.uint8)
    images[1, 8:24, 8:24] = (200, 30, 30)
    sketch = xdog_line_art(images)
    assert sketch.shape == (2, 32, 32, 1) and sketch.dtype == np.uint8
    assert set(np.unique(sketch)) <= {0, 255}
    assert np.all(sketch[0] == 255)  # blank paper stays blank
    assert np.any(sketch[1] == 0)  # the square's outline is drawn
    np.testing.assert_array_equal(sketch, xdog_line_art(images))
