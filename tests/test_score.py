"""`keras-scft score` (keras_scft.scoring): the CLI end to end on a tiny model, and its parts."""

import json
import pathlib

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from keras_scft.layers.discriminator import build_discriminator
from keras_scft.layers.generator import build_generator
from keras_scft.metrics.sc_psnr import xdog_line_art
from keras_scft.model import ColorizerModel
from keras_scft.scoring.cli import score_command
from keras_scft.scoring.evalset import (
    data_source_config,
    evaluation_augment,
    load_eval_set,
    self_reference_examples,
)
from keras_scft.scoring.tasks import derangement, subgroup_partners

TINY_WIDTHS = (8, 8, 16, 16, 16, 16, 32, 32, 32, 32)
SPAIR_MINI = pathlib.Path(__file__).resolve().parent / "fixtures" / "spair_mini"


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    """A tiny untrained ColorizerModel saved as .keras (scoring uses its generator)."""
    path = tmp_path_factory.mktemp("model") / "tiny.keras"
    model = ColorizerModel(generator=build_generator(widths=TINY_WIDTHS),
                           discriminator=build_discriminator(widths=(16, 32, 32)), perceptual=None)
    model.save(path)
    return path


def _score(*args):
    result = CliRunner().invoke(score_command, [str(a) for a in args])
    return result, result.output


# ---- end to end ------------------------------------------------------------------------------

def test_cli_scores_self_reference_correspondence_and_sc_psnr(model_file, sample_dir, tmp_path):
    out = tmp_path / "scores" / "scores.json"
    result, output = _score("--model", model_file, "--data", sample_dir, "--metrics", "psnr,ssim,corr",
                            "--size", 64, "--limit", 6, "--batch-size", 4, "--seed", 3,
                            "--spair", SPAIR_MINI, "--categories", "cat,dog", "--out", out)
    assert result.exit_code == 0, output
    scores = json.loads(out.read_text())
    assert scores["format"] == "keras-scft/scores/1"
    settings = scores["settings"]
    assert settings["model"]["path"] == str(model_file.resolve()) and len(settings["model"]["sha256"]) == 64
    assert (settings["size"], settings["seed"], settings["split"], settings["limit"]) == (64, 3, "test", 6)
    assert settings["data"]["source"] == {"type": "openmoji", "root": str(sample_dir), "split": "test"}
    assert settings["data"]["n_images"] == 6 and settings["data"]["line_art"] is True
    assert settings["self_augment"]["seed"] == 3
    assert set(settings["metrics"]) == {"psnr", "ssim", "corr", "sc_psnr"}
    assert settings["spair"]["categories"] == ["cat", "dog"] and settings["spair"]["patch_size"] == 4
    assert settings["backend"] and settings["devices"]

    tasks = scores["tasks"]
    assert set(tasks) == {"self_reference", "correspondence", "sc_psnr"}
    self_ref = tasks["self_reference"]
    assert self_ref["n"] == 6
    assert set(self_ref["model"]) == set(self_ref["copy_reference"]) == {"psnr", "ssim"}
    assert 0 < self_ref["model"]["psnr"] < 100 and -1 <= self_ref["model"]["ssim"] <= 1
    corr = tasks["correspondence"]
    assert corr["n_images"] == 6 and corr["n"] > 0 and 0 <= corr["exact"] <= corr["within1"] <= 1
    sc = tasks["sc_psnr"]
    assert (sc["n_pairs"], sc["n_keypoints"], sc["patch_size"]) == (4, 32, 4)
    assert set(sc["per_category"]) == {"cat", "dog"} and len(sc["per_pair"]) == 4

    assert "self_reference  psnr" in output and "sc_psnr" in output and f"wrote {out}" in output
    assert [p.name for p in out.parent.iterdir()] == ["scores.json"]  # no partial files left

    result, output = _score("--model", model_file, "--data", sample_dir, "--out", out)
    assert result.exit_code == 2 and "already exists; pass --force" in output


@pytest.mark.slow
def test_cli_fid_kid_lpips_code_path_with_random_weights(model_file, sample_dir, tmp_path):
    out = tmp_path / "scores.json"
    result, output = _score("--model", model_file, "--data", sample_dir, "--metrics", "fid,kid,lpips,bg",
                            "--fid-weights", "random", "--lpips-weights", "random",
                            "--size", 64, "--limit", 4, "--out", out)
    assert result.exit_code == 0, output
    scores = json.loads(out.read_text())
    assert scores["settings"]["weights"] == {"fid": "random", "lpips": "random"}
    cross = scores["tasks"]["cross_reference"]
    assert (cross["n"], cross["n_real"]) == (4, 4)
    assert cross["fid"] > 0 and {"kid", "kid_std"} <= set(cross)
    assert 0 <= cross["bg"] <= 255 and 0 < cross["bg_white_fraction"] < 1  # emoji on white paper
    assert "cross_reference  bg" in output
    assert set(scores["tasks"]["self_reference"]["model"]) == {"lpips"}


def test_cli_subgroup_pairing_scores_the_images_that_have_a_partner(model_file, sample_dir, tmp_path):
    out = tmp_path / "scores.json"
    result, output = _score("--model", model_file, "--data", sample_dir, "--metrics", "fid,bg",
                            "--pairing", "subgroup", "--fid-weights", "random", "--size", 64, "--out", out,
                            "--save-outputs", tmp_path / "outputs")
    assert result.exit_code == 0, output
    scores = json.loads(out.read_text())
    cross = scores["tasks"]["cross_reference"]
    assert scores["settings"]["pairing"] == cross["pairing"] == "subgroup"
    assert cross["n"] == cross["n_real"] == 4  # of the sample's 32 test emoji, 4 have a partner
    assert cross["fid"] > 0 and "cross_reference (subgroup)  fid" in output
    assert len(list((tmp_path / "outputs" / "cross_reference_subgroup").glob("*.png"))) == 4


def test_cli_attention_temperature_is_used_and_recorded(model_file, sample_dir, tmp_path):
    outputs = {}
    for temperature in ("1", "50"):
        out = tmp_path / f"t{temperature}.json"
        result, output = _score("--model", model_file, "--data", sample_dir, "--metrics", "psnr", "--size", 32,
                                "--limit", 2, "--attention-temperature", temperature, "--out", out,
                                "--save-outputs", tmp_path / temperature)
        assert result.exit_code == 0, output
        assert json.loads(out.read_text())["settings"]["attention_temperature"] == float(temperature)
        outputs[temperature] = [np.asarray(Image.open(p)) for p in sorted((tmp_path / temperature / "cross_reference").glob("*.png"))]
    assert any(not np.array_equal(a, b) for a, b in zip(outputs["1"], outputs["50"]))


@pytest.mark.parametrize("args, message", [
    (["--data", "no/such/folder"], "--data no/such/folder: no such file or folder"),
    (["--data", "{\"type\": \"folder\"}"], "needs option(s) ['root']"),
    (["--data", "SAMPLE", "--metrics", "psnr,bleu"], "unknown metric(s) bleu"),
    (["--metrics", "psnr"], "psnr need --data"),
    (["--metrics", "sc_psnr"], "sc_psnr needs --spair"),
    (["--metrics", "sc_psnr", "--spair", "no/spair"], "SPair-71k folder no/spair does not exist"),
    (["--data", "SAMPLE", "--metrics", "fid", "--fid-weights", "no/weights.npz"],
     "no FID Inception weights at no/weights.npz"),
    (["--data", "SAMPLE", "--size", "72"], "72 is not a multiple of the generator's stride 16"),
    (["--data", "SAMPLE", "--metrics", "kid", "--limit", "1"], "need at least 2 images, the data gave 1"),
    (["--data", "SAMPLE/color", "--metrics", "fid", "--pairing", "subgroup"],
     "pairing by subgroup needs OpenMoji data whose manifest has categories"),
    (["--data", "SAMPLE", "--attention-temperature", "0"], "attention temperature must be a finite number > 0"),
    (["--data", "SAMPLE", "--metrics", "fid", "--pairing", "subgroup", "--limit", "3"],
     "none of the 3 images has another emoji of its subgroup"),
])
def test_cli_errors_are_one_clear_line(model_file, sample_dir, tmp_path, args, message):
    args = [a.replace("SAMPLE", str(sample_dir)) for a in args]
    result, output = _score("--model", model_file, "--out", tmp_path / "s.json", *args)
    assert result.exit_code != 0
    assert message in output and "Traceback" not in output
    assert not (tmp_path / "s.json").exists()


def test_cli_reports_a_missing_or_broken_model(tmp_path, sample_dir):
    (tmp_path / "broken.keras").write_bytes(b"not a zip")
    for name, message in (("missing.keras", "does not exist"), ("broken.keras", "broken.keras")):
        result, output = _score("--model", tmp_path / name, "--data", sample_dir, "--out", tmp_path / "s.json")
        assert result.exit_code == 1 and "Error: --model: " in output and message in output
        assert "Traceback" not in output


# ---- parts -------------------------------------------------------------------------------------

def test_derangement_is_a_seeded_permutation_without_fixed_points():
    for n in (2, 3, 10, 454):
        partner = derangement(n, seed=5)
        assert sorted(partner) == list(range(n)) and np.all(partner != np.arange(n))
    np.testing.assert_array_equal(derangement(50, 1), derangement(50, 1))
    assert not np.array_equal(derangement(50, 1), derangement(50, 2))
    with pytest.raises(ValueError, match="at least 2"):
        derangement(1, 0)


def test_subgroup_partners_are_other_emoji_of_the_subgroup_and_seeded():
    names = ["1F44B", "1F44B-1F3FB", "1F590", "1F600", "1F426", "1F985"]
    categories = ["body/hand", "body/hand", "body/hand", "face/smiling", "animal/bird", "animal/bird"]
    partner = subgroup_partners(names, categories, seed=0)
    assert partner[0] == partner[1] == 2  # a skin-tone variant of the same emoji is no partner
    assert partner[2] in (0, 1) and partner[3] == -1  # alone in its subgroup: left out
    assert (partner[4], partner[5]) == (5, 4)
    draws = {int(subgroup_partners(names, categories, seed)[2]) for seed in range(20)}
    assert draws == {0, 1}
    np.testing.assert_array_equal(subgroup_partners(names, categories, 3), subgroup_partners(names, categories, 3))
    with pytest.raises(ValueError, match="manifest has categories"):
        subgroup_partners(names, (), 0)
    with pytest.raises(ValueError, match="none of the 2 images"):
        subgroup_partners(["1F44B", "1F44B-1F3FB"], ["body/hand"] * 2, 0)


def test_data_argument_forms(sample_dir, tmp_path):
    assert data_source_config(str(sample_dir), "val") == {"type": "openmoji", "root": str(sample_dir),
                                                          "split": "val"}
    color = str(sample_dir / "color")
    assert data_source_config(color, "test") == {"type": "folder", "root": color}
    inline = json.dumps({"type": "folder", "root": color})
    assert data_source_config(inline, "test") == {"type": "folder", "root": color}
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps({"type": "paired", "sketch_dir": "s", "color_dir": "c"}))
    assert data_source_config(str(spec), "test") == {"type": "paired", "sketch_dir": "s", "color_dir": "c"}
    recipe = tmp_path / "recipe.json"
    recipe.write_text(json.dumps({"data": {"root": "om", "split": "train", "image_size": 128},
                                  "train": {"steps": 10}}))
    assert data_source_config(str(recipe), "test") == {"type": "openmoji", "root": "om", "split": "test"}
    recipe.write_text(json.dumps({"data": {"type": "folder", "root": "photos"}, "train": {"steps": 1}}))
    assert data_source_config(str(recipe), "test") == {"type": "folder", "root": "photos"}
    recipe.write_text(json.dumps({"data": {"kind": "folder"}, "train": {"steps": 1}}))
    with pytest.raises(ValueError, match='not a valid recipe: recipe field "data.kind" is unknown'):
        data_source_config(str(recipe), "test")
    with pytest.raises(ValueError, match="--data is not valid JSON"):
        data_source_config("{oops", "test")


def test_data_without_line_art_gets_fixed_xdog_sketches(sample_dir):
    evalset = load_eval_set(data_source_config(str(sample_dir / "color"), "test"), 32, limit=3)
    assert evalset.images.shape == (3, 32, 32, 3) and not evalset.line_art
    assert evalset.sketches.shape == (3, 32, 32, 1) and set(np.unique(evalset.sketches)) == {0, 255}
    np.testing.assert_array_equal(evalset.sketches, xdog_line_art(evalset.images))
    assert evalset.names == evalset.categories == ()  # an image folder has neither


def test_openmoji_eval_set_has_the_names_and_categories_of_its_images(sample_dir):
    evalset = load_eval_set(data_source_config(str(sample_dir), "test"), 32, limit=5)
    manifest = json.loads((sample_dir / "manifest.json").read_text())
    assert evalset.names == tuple(manifest["splits"]["test"][:5])
    assert evalset.categories == tuple(manifest["categories"][name] for name in evalset.names)


def test_self_reference_examples_use_the_line_art_and_ignore_batch_size(sample_dir):
    evalset = load_eval_set(data_source_config(str(sample_dir), "test"), 32, limit=5)
    one_batch = next(self_reference_examples(evalset, evaluation_augment(16, seed=0), batch_size=8))
    batches = list(self_reference_examples(evalset, evaluation_augment(16, seed=0), batch_size=2))
    assert [len(b["sketch"]) for b in batches] == [2, 2, 1]
    for key, value in one_batch.items():
        np.testing.assert_array_equal(np.concatenate([b[key] for b in batches]), value, err_msg=key)
    assert evalset.line_art
    np.testing.assert_array_equal(one_batch["sketch"], evalset.sketches)
    assert one_batch["reference"].dtype == one_batch["target"].dtype == np.uint8
    assert not np.array_equal(one_batch["reference"], one_batch["target"])  # warped
    # the target is the image with one shift per channel (clipped): unclipped pixels agree
    difference = one_batch["target"].astype(int) - evalset.images
    unclipped = (one_batch["target"] > 0) & (one_batch["target"] < 255)
    for image in range(5):
        for channel in range(3):
            shifts = difference[image, ..., channel][unclipped[image, ..., channel]]
            assert shifts.size and shifts.max() - shifts.min() <= 1
    other_seed = next(self_reference_examples(evalset, evaluation_augment(16, seed=1), batch_size=8))
    assert not np.array_equal(other_seed["reference"], one_batch["reference"])


def test_color_shift_bounds_the_self_reference_shifts(sample_dir, model_file, tmp_path):
    """--color-shift sets the largest per-channel shift of the targets (0: the images themselves)
    and is recorded in the scores' settings."""
    evalset = load_eval_set(data_source_config(str(sample_dir), "test"), 32, limit=6)
    for strength in (0.0, 0.2):
        example = next(self_reference_examples(evalset, evaluation_augment(16, seed=0, color_shift=strength), 8))
        difference = example["target"].astype(int) - evalset.images
        assert np.abs(difference).max() <= 127.5 * strength + 1
    shifted = next(self_reference_examples(evalset, evaluation_augment(16, seed=0), 8))
    assert np.abs(shifted["target"].astype(int) - evalset.images).max() > 127.5 * 0.2 + 1

    out = tmp_path / "scores.json"
    result, output = _score("--model", model_file, "--data", sample_dir, "--metrics", "psnr", "--size", 32,
                            "--limit", 2, "--color-shift", 0.25, "--out", out)
    assert result.exit_code == 0, output
    assert json.loads(out.read_text())["settings"]["self_augment"]["color_shift"] == 0.25
    result, output = _score("--model", model_file, "--data", sample_dir, "--color-shift", -1, "--out", out,
                            "--force")
    assert result.exit_code == 2 and "--color-shift" in output


def test_keep_white_leaves_the_paper_of_self_reference_targets_white(sample_dir, model_file, tmp_path):
    """--keep-white: white paper stays white in the targets (shifted without it), and the
    setting is recorded in the scores."""
    evalset = load_eval_set(data_source_config(str(sample_dir), "test"), 32, limit=6)
    paper = evalset.images.min(axis=-1) == 255
    assert paper.any()
    for keep_white, stays_white in ((True, True), (False, False)):
        augment = evaluation_augment(16, seed=0, keep_white=keep_white)
        target = next(self_reference_examples(evalset, augment, 8))["target"]
        assert bool(np.all(target[paper] == 255)) is stays_white

    out = tmp_path / "scores.json"
    result, output = _score("--model", model_file, "--data", sample_dir, "--metrics", "psnr", "--size", 32,
                            "--limit", 2, "--keep-white", "--out", out)
    assert result.exit_code == 0, output
    assert json.loads(out.read_text())["settings"]["self_augment"]["keep_white"] is True
