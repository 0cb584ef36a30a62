"""benchmarks/cross_grid.py: grids of saved cross-reference outputs, both pairings."""

import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))

import cross_grid  # noqa: E402
from keras_scft.scoring.evalset import data_source_config, load_eval_set  # noqa: E402
from keras_scft.scoring.tasks import subgroup_partners  # noqa: E402

SIZE = 16


def _outputs(folder: Path, count: int) -> Path:
    """``count`` flat PNGs whose red value is their index (the scorer's sorted-name order)."""
    folder.mkdir()
    for i in range(count):
        Image.fromarray(np.full((SIZE, SIZE, 3), (i * 10, 0, 0), np.uint8)).save(folder / f"{i:03d}.png")
    return folder


def _run(monkeypatch, *args):
    monkeypatch.setattr(sys, "argv", ["cross_grid.py", "--data", str(SAMPLE), "--size", str(SIZE), *args])
    cross_grid.main()


SAMPLE = Path(__file__).resolve().parent.parent / "keras_scft" / "data" / "sample"


def test_subgroup_grid_puts_each_rows_own_output_beside_its_subgroup_reference(tmp_path, monkeypatch):
    evalset = load_eval_set(data_source_config(str(SAMPLE), "test"), SIZE)
    partner = subgroup_partners(evalset.names, evalset.categories, 0)
    scored = np.flatnonzero(partner >= 0)
    assert 0 < len(scored) < len(partner)  # the sample has images without a partner
    outputs = _outputs(tmp_path / "outputs", len(scored))
    row = int(scored[-1])
    out = tmp_path / "grid.jpg"
    _run(monkeypatch, "--pairing", "subgroup", "--run", f"m={outputs}", "--rows", str(row), "--scale", "1",
         "--out", str(out))
    grid = np.asarray(Image.open(out).convert("RGB")).astype(int)
    assert grid.shape[1] == 4 * grid.shape[0]  # line art | reference | m | truth
    column = grid.shape[1] // 4
    output_cell = grid[2:-2, 2 * column + 2 : 3 * column - 2]
    assert abs(np.median(output_cell[..., 0]) - 10 * (len(scored) - 1)) <= 3  # the last output, not row's index
    reference_cell = grid[:, column : 2 * column]
    distances = np.abs(evalset.images.astype(int) - reference_cell).mean(axis=(1, 2, 3))
    assert np.argmin(distances) == partner[row]  # the subgroup partner (JPEG-compressed)


def test_a_row_without_a_subgroup_partner_is_named(tmp_path, monkeypatch):
    evalset = load_eval_set(data_source_config(str(SAMPLE), "test"), SIZE)
    partner = subgroup_partners(evalset.names, evalset.categories, 0)
    outputs = _outputs(tmp_path / "outputs", int((partner >= 0).sum()))
    lonely = int(np.flatnonzero(partner < 0)[0])
    with pytest.raises(SystemExit, match=rf"--rows {lonely}: not among the {(partner >= 0).sum()} test images"):
        _run(monkeypatch, "--pairing", "subgroup", "--run", f"m={outputs}", "--rows", str(lonely),
             "--out", str(tmp_path / "grid.jpg"))


def test_output_count_must_match_the_pairing(tmp_path, monkeypatch):
    outputs = _outputs(tmp_path / "outputs", 3)
    with pytest.raises(SystemExit, match="--run m: 3 outputs for the 32 test images scored with --pairing random"):
        _run(monkeypatch, "--run", f"m={outputs}", "--rows", "0", "--out", str(tmp_path / "grid.jpg"))
