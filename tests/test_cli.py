"""The keras-scft command line, driven through click's CliRunner on a tiny model."""

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from keras_scft import cli
from keras_scft.data.io import read_image
from keras_scft.inference import colorize
from keras_scft.layers.discriminator import build_discriminator
from keras_scft.layers.generator import build_generator
from keras_scft.model import ColorizerModel

TINY_WIDTHS = (8, 8, 16, 16, 16, 16, 32, 32, 32, 32)
REPO = Path(__file__).resolve().parent.parent
NAMES = ("1F31F", "1F36B", "1F399", "25D0")  # four pairs of the committed sample


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    """A tiny generator trained (so it says) at 32x32, saved as .keras."""
    path = tmp_path_factory.mktemp("model") / "generator.keras"
    build_generator(widths=TINY_WIDTHS, residual_blocks=1, image_size=(32, 32)).save(path)
    return path


def run(*args):
    return CliRunner().invoke(cli.main, [str(a) for a in args])


def ok(result):
    assert result.exit_code == 0, result.output + repr(result.exception)
    return result


def failed(result, *fragments, exit_code=2):
    """A clean failure: the exit code, no traceback, and every fragment in the message."""
    assert result.exit_code == exit_code, result.output
    assert isinstance(result.exception, SystemExit) and "Traceback" not in result.output
    for fragment in fragments:
        assert fragment in result.output, result.output
    return result


def png(path):
    with Image.open(path) as image:
        return image.format, image.mode, image.size


def test_help_lists_every_command_and_explains_options():
    assert set(cli.main.list_commands(None)) == {"attention", "colorize", "data", "export", "score",
                                                 "sketchify", "train"}
    for command, options in {"colorize": ["--model", "--sketch", "--reference", "--out", "--size",
                                          "--batch-size", "--force"],
                             "sketchify": ["--sigma", "--k", "--p", "--eps", "--phi", "--out"],
                             "attention": ["--points", "--grid", "--top-k", "--panel-height"],
                             "export": ["MODEL", "OUT_DIR", "--version", "--force"],
                             "data": ["openmoji", "sample"]}.items():
        output = ok(run(command, "--help")).output
        assert all(option in output for option in options), output


@pytest.mark.multi_backend
def test_colorize_one_file_equals_the_library(model_file, sample_dir, tmp_path):
    sketch, reference = sample_dir / "line" / "1F31F.png", sample_dir / "color" / "1F36B.png"
    out = tmp_path / "result.png"
    ok(run("colorize", "--model", model_file, "--sketch", sketch, "--reference", reference, "--out", out))
    assert png(out) == ("PNG", "RGB", (128, 128))
    expected = colorize(model_file, read_image(sketch, "gray")[None], read_image(reference)[None])[0]
    np.testing.assert_array_equal(read_image(out), expected)
    ok(run("colorize", "--model", model_file, "--sketch", sketch, "--reference", reference,
           "--out", tmp_path))  # an existing folder: <sketch name>.png inside it
    assert png(tmp_path / "1F31F.png")[2] == (128, 128)


def _sample_folders(sample_dir, root):
    """Sketches a/<name>.png (one resized to 64x96) and references a/<name>.jpg, plus extras."""
    sketches, references = root / "sketches", root / "references"
    for name in NAMES:
        (sketches / "a").mkdir(parents=True, exist_ok=True)
        (references / "a").mkdir(parents=True, exist_ok=True)
        sketch = Image.open(sample_dir / "line" / f"{name}.png")
        (sketch.resize((96, 64)) if name == NAMES[0] else sketch).save(sketches / "a" / f"{name}.png")
        Image.open(sample_dir / "color" / f"{name}.png").convert("RGB").save(references / "a" / f"{name}.jpg")
    Image.open(sample_dir / "line" / "2638.png").save(sketches / "lonely.png")  # no reference
    return sketches, references


def test_colorize_folders_pair_by_relative_name(model_file, sample_dir, tmp_path):
    sketches, references = _sample_folders(sample_dir, tmp_path)
    out = tmp_path / "out"
    result = ok(run("colorize", "--model", model_file, "--sketch", sketches, "--reference", references,
                    "--out", out, "--batch-size", "2"))
    assert "1 sketch(es) have no reference" in result.output and "lonely" in result.output
    written = sorted(p.relative_to(out).as_posix() for p in out.rglob("*"))
    assert written == ["a"] + [f"a/{name}.png" for name in NAMES]
    assert png(out / "a" / f"{NAMES[0]}.png") == ("PNG", "RGB", (96, 64))  # each at its sketch's size
    assert png(out / "a" / f"{NAMES[1]}.png") == ("PNG", "RGB", (128, 128))


def test_colorize_folder_with_one_reference_and_force(model_file, sample_dir, tmp_path):
    sketches, _ = _sample_folders(sample_dir, tmp_path)
    out = tmp_path / "out"
    args = ["colorize", "--model", model_file, "--sketch", sketches,
            "--reference", sample_dir / "color" / "1F36B.png", "--out", out, "--size", "48"]
    ok(run(*args))
    assert len(list(out.rglob("*.png"))) == len(NAMES) + 1
    before = (out / "lonely.png").read_bytes()
    failed(run(*args), "5 output file(s) already exist", "--force")
    assert (out / "lonely.png").read_bytes() == before
    ok(run(*args, "--force"))


def test_colorize_errors_name_the_bad_argument(model_file, sample_dir, tmp_path):
    sketch, reference = sample_dir / "line" / "1F31F.png", sample_dir / "color" / "1F31F.png"
    base = ["colorize", "--model", model_file, "--reference", reference]
    failed(run(*base, "--sketch", tmp_path / "missing.png", "--out", tmp_path / "o.png"),
           "--sketch", "missing.png", "does not exist")
    broken = tmp_path / "broken" / "x.png"
    broken.parent.mkdir()
    broken.write_bytes(b"not a png")
    failed(run(*base, "--sketch", broken.parent, "--out", tmp_path / "o"), "--sketch", str(broken))
    failed(run(*base, "--sketch", sketch, "--out", tmp_path / "o.jpg"), "--out", "must end in .png")
    failed(run(*base, "--sketch", broken.parent, "--out", broken.parent / "out"), "--out", "inside the input")
    failed(run("colorize", "--model", model_file, "--sketch", sketch, "--reference", sample_dir / "color",
               "--out", tmp_path / "o.png"), "--reference", "is a folder")
    not_a_model = tmp_path / "model.keras"
    not_a_model.write_text("hello")
    failed(run("colorize", "--model", not_a_model, "--sketch", sketch, "--reference", reference,
               "--out", tmp_path / "o.png"), "--model", "cannot load model", str(not_a_model))
    failed(run(*base, "--sketch", sketch, "--out", tmp_path / "o.png", "--size", "big"), "--size")
    assert not (tmp_path / "o.png").exists() and not (tmp_path / "o").exists()


@pytest.mark.filterwarnings("ignore:Skipping nested container")
def test_colorize_loads_a_saved_colorizer_model(sample_dir, tmp_path):
    model = ColorizerModel(generator=build_generator(widths=TINY_WIDTHS, residual_blocks=1),
                           discriminator=build_discriminator(widths=(16, 32, 32)), perceptual=None)
    model.save(tmp_path / "colorizer.keras")
    ok(run("colorize", "--model", tmp_path / "colorizer.keras", "--sketch", sample_dir / "line" / "1F31F.png",
           "--reference", sample_dir / "color" / "1F31F.png", "--out", tmp_path / "o.png", "--size", "32"))


@pytest.mark.multi_backend
def test_sketchify_files_and_folders(sample_dir, tmp_path):
    photo = tmp_path / "photo.jpg"
    Image.open(sample_dir / "color" / "1F36B.png").convert("RGB").resize((80, 60)).save(photo)
    ok(run("sketchify", photo, "--out", tmp_path / "one"))
    assert png(tmp_path / "one" / "photo.png") == ("PNG", "L", (80, 60))
    sketch = read_image(tmp_path / "one" / "photo.png", "gray")
    assert 0.5 < np.mean(sketch == 255) < 1.0 and sketch.min() == 0  # white paper, black lines
    ok(run("sketchify", photo, "--out", tmp_path / "thick", "--sigma", "1.5"))
    assert not np.array_equal(read_image(tmp_path / "thick" / "photo.png", "gray"), sketch)

    folder = tmp_path / "photos"
    (folder / "sub").mkdir(parents=True)
    Image.open(photo).save(folder / "sub" / "p.png")
    ok(run("sketchify", folder, "--out", tmp_path / "many"))
    assert png(tmp_path / "many" / "sub" / "p.png")[2] == (80, 60)
    failed(run("sketchify", folder, "--out", tmp_path / "many"), "--force")
    failed(run("sketchify", photo, folder / "sub" / "p.png", photo, "--out", tmp_path / "x"),
           "would both be written to")


def test_attention_draws_three_panels(model_file, sample_dir, tmp_path):
    args = ["attention", "--model", model_file, "--sketch", sample_dir / "line" / "1F31F.png",
            "--reference", sample_dir / "color" / "25D0.png", "--panel-height", "64"]
    ok(run(*args, "--out", tmp_path / "view.png", "--points", "10,10;100,60;127,127"))
    assert png(tmp_path / "view.png") == ("PNG", "RGB", (3 * 64 + 2 * 8, 64))
    failed(run(*args, "--out", tmp_path / "bad.png", "--points", "10,200"), "--points", "outside")
    failed(run(*args, "--out", tmp_path / "bad.png", "--points", "10;x"), "--points", "x,y pairs")
    assert not (tmp_path / "bad.png").exists()


@pytest.mark.slow
def test_export_command_writes_versions(model_file, tmp_path):
    out = tmp_path / "exports" / "colorizer"
    result = ok(run("export", model_file, out))
    assert (out / "1" / "saved_model.pb").is_file() and "wrote" in result.output
    failed(run("export", model_file, out, "--version", "1"), "already exists", "--force")
    failed(run("export", tmp_path / "none.keras", out), "none.keras", "does not exist")


def test_tools_export_is_the_same_command():
    spec = importlib.util.spec_from_file_location("export_tool", REPO / "tools" / "export.py")
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    assert tool.main is cli.export_command


def test_missing_lazy_command_fails_cleanly(monkeypatch):
    monkeypatch.setitem(cli.LAZY_COMMANDS, "train", ("keras_scft.no_such_module", "train_command", "Train."))
    assert "(not available)" in ok(run("--help")).output
    failed(run("train", "--recipe", "x.json"), "keras-scft train", "is not available",
           "keras_scft.no_such_module", exit_code=1)


def test_python_dash_m_runs_the_cli():
    result = subprocess.run([sys.executable, "-m", "keras_scft", "--help"], check=False, capture_output=True,
                            text=True, timeout=60, cwd=REPO)
    assert result.returncode == 0 and "colorize" in result.stdout


@pytest.mark.parametrize("given, seen", [(None, "false"), ("true", "true")])
def test_train_leaves_gpu_memory_unreserved_unless_told(monkeypatch, given, seen):
    """JAX reads XLA_PYTHON_CLIENT_PREALLOCATE when it makes its GPU client: the train command
    sets "false" before training starts, and keeps a value the user set."""
    from keras_scft.training import run as training_run

    values = []
    monkeypatch.setattr(training_run, "train",
                        lambda *args, **kwargs: values.append(os.environ.get("XLA_PYTHON_CLIENT_PREALLOCATE")) or {})
    if given is None:
        monkeypatch.delenv("XLA_PYTHON_CLIENT_PREALLOCATE", raising=False)
    else:
        monkeypatch.setenv("XLA_PYTHON_CLIENT_PREALLOCATE", given)
    ok(run("train", REPO / "recipes" / "openmoji.json", "--quiet"))
    assert values == [seen]
    help_text = ok(run("train", "--help")).output
    assert "XLA_PYTHON_CLIENT_PREALLOCATE" in help_text
