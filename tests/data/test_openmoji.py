import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from keras_scft.data import OpenMojiSource, openmoji, read_image
from keras_scft.data.openmoji import (
    ATTRIBUTION,
    OpenMojiPackage,
    assign_splits,
    build_openmoji,
    ink_fraction,
    is_flag,
    make_sample,
    prepare_openmoji,
    render_svg,
    skin_tone_group_key,
)

REPO = Path(__file__).resolve().parents[2]

WAVE = "1F44B"
WAVE_TONES = [f"1F44B-1F3F{c}" for c in "BCDEF"]


# ---- grouping and splitting ------------------------------------------------------------------

def test_group_key_strips_skin_tones_and_variation_selectors():
    assert {skin_tone_group_key(n) for n in [WAVE] + WAVE_TONES} == {"1F44B"}
    golfer = ["1F3CC-FE0F-200D-2642-FE0F", "1F3CC-1F3FB-200D-2642-FE0F",
              "1F3CC-1F3FF-200D-2642-FE0F"]
    assert {skin_tone_group_key(n) for n in golfer} == {"1F3CC-200D-2642"}
    couple = "1F468-1F3FB-200D-2764-FE0F-200D-1F468-1F3FF"
    assert skin_tone_group_key(couple) == "1F468-200D-2764-200D-1F468"
    assert skin_tone_group_key("1F3FD") == "skin-tone"
    assert skin_tone_group_key("1F600") != skin_tone_group_key("1F601")


def _synthetic_names(count):
    return [f"E{i:04X}" for i in range(count)]


def test_assign_splits_keeps_variants_together_and_is_deterministic():
    names = _synthetic_names(300) + [WAVE] + WAVE_TONES
    splits = assign_splits(names, seed=0)
    assert sorted(sum(splits.values(), [])) == sorted(names)
    assert sum(n in split for split in splits.values() for n in [WAVE]) == 1
    side = next(split for split, members in splits.items() if WAVE in members)
    assert all(tone in splits[side] for tone in WAVE_TONES)
    assert assign_splits(list(reversed(names)), seed=0) == splits
    # a name's split does not depend on which other names are present
    alone = assign_splits([WAVE], seed=0)
    assert WAVE in alone[side]


def test_assign_splits_fractions_and_seed():
    names = _synthetic_names(5000)
    splits = assign_splits(names, seed=0)
    fractions = {split: len(members) / 5000 for split, members in splits.items()}
    assert abs(fractions["train"] - 0.8) < 0.03
    assert abs(fractions["val"] - 0.1) < 0.02 and abs(fractions["test"] - 0.1) < 0.02
    assert assign_splits(names, seed=1)["test"] != splits["test"]
    with pytest.raises(ValueError, match="sum to 1"):
        assign_splits(names, fractions={"train": 0.9, "val": 0.1, "test": 0.1})


def test_assign_splits_joins_variants_to_their_base_emoji():
    two_tone = [f"1FAF1-1F3F{a}-200D-1FAF2-1F3F{b}" for a in "BCD" for b in "CDE" if a != b]
    names = ["1F91D"] + two_tone + _synthetic_names(200)
    bases = {name: "1F91D" for name in two_tone}
    for seed in range(10):
        splits = assign_splits(names, seed=seed, base_names=bases)
        side = next(split for split, members in splits.items() if "1F91D" in members)
        assert set(two_tone) <= set(splits[side])


# ---- rendering and exclusion -----------------------------------------------------------------

COLOR_SVG = ('<svg viewBox="0 0 72 72" xmlns="http://www.w3.org/2000/svg">'
             '<circle cx="36" cy="36" r="23" fill="#FCEA2B" stroke="#000" stroke-width="2"/></svg>')
LINE_SVG = ('<svg viewBox="0 0 72 72" xmlns="http://www.w3.org/2000/svg">'
            '<circle cx="36" cy="36" r="23" fill="none" stroke="#000" stroke-width="2"/></svg>')
BLANK_SVG = '<svg viewBox="0 0 72 72" xmlns="http://www.w3.org/2000/svg"><g/></svg>'
FLAG_SVG = ('<svg viewBox="0 0 72 72" xmlns="http://www.w3.org/2000/svg">'
            '<rect x="5" y="17" width="62" height="38" fill="#d22f27" stroke="#000"/></svg>')


def test_render_svg_is_rgb_on_white():
    image = render_svg(COLOR_SVG, 32)
    assert image.shape == (32, 32, 3) and image.dtype == np.uint8
    assert image[0, 0].tolist() == [255, 255, 255]
    assert image[16, 16].tolist() == [0xFC, 0xEA, 0x2B]


def test_ink_fraction_and_flags():
    line = np.full((10, 10, 1), 255, np.uint8)
    assert ink_fraction(line) == 0.0
    line[0, :5] = 0
    assert ink_fraction(line) == pytest.approx(0.05)
    assert is_flag({"group": "flags", "subgroups": "country-flag"})
    assert is_flag({"group": "extras-unicode", "subgroups": "subdivision-flag"})
    assert not is_flag({"group": "smileys-emotion", "subgroups": "face-smiling"})
    assert not is_flag({})


def _package(**overrides):
    names = ["1F600", "1F44B", "1F44B-1F3FB", "1F195", "1F1E9-1F1EA"]
    color = {name: COLOR_SVG for name in names}
    color["1F1E9-1F1EA"] = FLAG_SVG
    line = {name: LINE_SVG for name in names}
    line["1F195"] = BLANK_SVG
    line["1F1E9-1F1EA"] = FLAG_SVG
    metadata = {name: {"group": "people-body", "subgroups": "hand", "skintone_base_hexcode": ""}
                for name in names}
    metadata["1F1E9-1F1EA"] = {"group": "flags", "subgroups": "country-flag"}
    fields = dict(color=color, line=line, metadata=metadata, registry="npm", package="openmoji",
                  version="17.0.0", license_text="CC BY-SA 4.0 text")
    return OpenMojiPackage(**{**fields, **overrides})


def _snapshot(folder):
    """Relative path -> (inode, mtime): a rewrite (atomic replace) changes the inode."""
    return {p.relative_to(folder).as_posix(): (p.stat().st_ino, p.stat().st_mtime_ns)
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_build_renders_excludes_and_is_idempotent(tmp_path):
    out = tmp_path / "om"
    first = build_openmoji(_package(), out, size=32)
    manifest = first.manifest
    assert manifest["counts"] == {"svgs": 5, "excluded_flags": 1, "excluded_low_ink": 1,
                                  "excluded_missing_line_art": 0, "kept": 3,
                                  **{s: len(manifest["splits"][s]) for s in openmoji.SPLITS}}
    assert manifest["excluded"]["flags"] == ["1F1E9-1F1EA"]
    assert manifest["excluded"]["low_ink"] == ["1F195"]
    assert first.rendered == 6 and first.reused == 0
    files = _snapshot(out)
    assert sorted(files) == ["LICENSE.txt", "color/1F44B-1F3FB.png", "color/1F44B.png",
                             "color/1F600.png", "line/1F44B-1F3FB.png", "line/1F44B.png",
                             "line/1F600.png", "manifest.json"]
    assert read_image(out / "line" / "1F600.png", "gray")[0, 0, 0] == 255
    assert json.loads((out / "manifest.json").read_text()) == manifest
    assert manifest["categories"] == {"1F44B": "people-body/hand", "1F44B-1F3FB": "people-body/hand",
                                      "1F600": "people-body/hand"}  # kept names only

    (out / "color" / ".1F600.png.x.partial").write_bytes(b"interrupted")  # leftover of a crash
    second = build_openmoji(_package(), out, size=32)
    assert second.rendered == 0 and second.reused == 6
    assert second.manifest == manifest
    assert _snapshot(out) == files  # nothing rewritten, leftover removed

    (out / "color" / "1F600.png").unlink()
    third = build_openmoji(_package(), out, size=32)
    assert third.rendered == 1 and (out / "color" / "1F600.png").is_file()


def test_build_refuses_a_folder_prepared_with_other_settings(tmp_path):
    build_openmoji(_package(), tmp_path, size=32)
    with pytest.raises(ValueError, match="size 32 .wanted 48."):
        build_openmoji(_package(), tmp_path, size=48)
    with pytest.raises(ValueError, match="line_art True .wanted False."):
        build_openmoji(_package(line=None, registry="pypi"), tmp_path, size=32)


def test_build_without_line_art_marks_the_manifest(tmp_path):
    result = build_openmoji(_package(line=None, metadata={}, registry="pypi"), tmp_path, size=16)
    assert result.manifest["line_art"] is False
    assert result.manifest["counts"]["kept"] == 5  # no metadata: flags cannot be told apart
    assert not (tmp_path / "line").exists()
    split = next(s for s in openmoji.SPLITS if result.manifest["splits"][s])
    record = OpenMojiSource(tmp_path, split)[0]
    assert "sketch" not in record and record["image"].shape == (16, 16, 3)


def test_prepare_reuses_a_complete_folder_without_fetching(tmp_path, monkeypatch):
    build_openmoji(_package(), tmp_path, size=32)

    def no_network(*args, **kwargs):
        raise AssertionError("fetch_openmoji must not be called")

    monkeypatch.setattr(openmoji, "fetch_openmoji", no_network)
    result = prepare_openmoji(tmp_path, size=32, source="auto")
    assert result.rendered == 0 and result.reused == 6
    # a manifest of before categories: built again (categories added, no PNG rendered)
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    del manifest["categories"]
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    monkeypatch.setattr(openmoji, "fetch_openmoji", lambda source, version: _package())
    result = prepare_openmoji(tmp_path, size=32, source="auto")
    assert result.rendered == 0 and len(result.manifest["categories"]) == 3
    with pytest.raises(ValueError, match="registry 'npm' .wanted 'pypi'."):
        prepare_openmoji(tmp_path, size=32, source="pypi")


def test_cli_prints_counts(tmp_path):
    build_openmoji(_package(), tmp_path, size=32)
    path = REPO / "tools" / "prepare_data.py"
    spec = importlib.util.spec_from_file_location("prepare_data", path)
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    runner = CliRunner()
    assert "--size" in runner.invoke(tool.main, ["openmoji", "--help"]).output
    result = runner.invoke(tool.main, ["openmoji", "--out", str(tmp_path), "--size", "32"])
    assert result.exit_code == 0, result.output
    assert "3 (line art, color) pairs" in result.output and "1 flags" in result.output
    clash = runner.invoke(tool.main, ["openmoji", "--out", str(tmp_path), "--size", "64"])
    assert clash.exit_code == 1 and "Error: " in clash.output and "size 32" in clash.output


# ---- the committed sample --------------------------------------------------------------------

def test_sample_is_small_licensed_and_regenerable(sample_dir, tmp_path):
    total = sum(p.stat().st_size for p in sample_dir.rglob("*") if p.is_file())
    assert total < 2 * 1024 * 1024
    assert ATTRIBUTION in (sample_dir / "ATTRIBUTION.md").read_text(encoding="utf-8")
    assert "Attribution-ShareAlike 4.0" in (sample_dir / "LICENSE.txt").read_text()
    manifest = make_sample(sample_dir, tmp_path, size=32,
                           per_split={"train": 2, "val": 2, "test": 8})
    assert manifest["counts"]["kept"] == 12 and manifest["size"] == 32
    assert sorted(manifest["categories"]) == sorted(sum(manifest["splits"].values(), []))
    test = OpenMojiSource(tmp_path, "test")
    assert len(test) == 8 and test[0]["sketch"].shape == (32, 32, 1)
