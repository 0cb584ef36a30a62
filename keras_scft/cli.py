"""The ``keras-scft`` command line (also ``python -m keras_scft``).

``colorize``, ``sketchify``, ``attention`` and ``export`` live here; ``train``, ``score`` and
``data`` are loaded from their packages when called (:data:`LAZY_COMMANDS`). Keras is only
imported inside the commands that need it, so ``--help`` and argument errors are quick.
Errors in paths, images and options end the command with a one-line message naming the bad
argument and a non-zero exit code; no output file is overwritten without ``--force``.
"""

from __future__ import annotations

import functools
import importlib
import os
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import click
import numpy as np
from tqdm import tqdm

from keras_scft import __version__
from keras_scft.data.io import (
    UnreadableImageError,
    check_image_header,
    read_image,
    write_png,
)
from keras_scft.data.sources import list_images

# name -> (module, attribute, one-line help shown when the module cannot be imported)
LAZY_COMMANDS = {
    "train": ("keras_scft.training.cli", "train_command", "Train a colorizer from a recipe."),
    "score": ("keras_scft.scoring.cli", "score_command", "Score a trained model."),
    "data": ("keras_scft.data.cli", "data_command", "Prepare the built-in datasets."),
}


class LazyGroup(click.Group):
    """A click group that imports the commands of :data:`LAZY_COMMANDS` on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted([*super().list_commands(ctx), *LAZY_COMMANDS])

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in LAZY_COMMANDS:
            return super().get_command(ctx, name)
        module_name, attribute, short_help = LAZY_COMMANDS[name]
        try:
            return getattr(importlib.import_module(module_name), attribute)
        except (ImportError, AttributeError) as error:
            return _unavailable_command(name, f"{module_name}.{attribute}", short_help, error)


def _unavailable_command(name: str, target: str, short_help: str, error: Exception) -> click.Command:
    message = f"`keras-scft {name}` is not available in this installation: {target} cannot be loaded ({error})"

    def fail(args) -> None:
        raise click.ClickException(message)

    return click.Command(name, callback=fail, help=f"{short_help} (not available: {error})",
                         short_help=f"{short_help} (not available)",
                         params=[click.Argument(["args"], nargs=-1, type=click.UNPROCESSED)],
                         context_settings={"ignore_unknown_options": True, "help_option_names": []})


class ImageSizeType(click.ParamType):
    """``N`` (square) or ``HxW`` -> int or (height, width)."""

    name = "N|HxW"

    def convert(self, value, param, ctx):
        if isinstance(value, (int, tuple)):
            return value
        try:
            sides = [int(side) for side in str(value).lower().split("x")]
        except ValueError:
            sides = []
        if len(sides) not in (1, 2) or min(sides) < 1:
            self.fail(f"{value!r} is not a size: give N (square) or HxW, e.g. 256 or 256x192", param, ctx)
        return sides[0] if len(sides) == 1 else tuple(sides)


class PointsType(click.ParamType):
    """``"x,y;x,y"`` (pixels) -> [(x, y), ...]."""

    name = "x,y;x,y"

    def convert(self, value, param, ctx):
        if isinstance(value, list):
            return value
        try:
            points = [tuple(float(v) for v in item.split(",")) for item in str(value).split(";") if item.strip()]
        except ValueError:
            points = []
        if not points or any(len(point) != 2 for point in points):
            self.fail(f"{value!r} is not a list of points: give x,y pairs separated by ';', "
                      "e.g. '10,20;64,64'", param, ctx)
        return points


IMAGE_SIZE = ImageSizeType()
MODEL_OPTION = click.option(
    "--model", "model_path", required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Trained model: a .keras file of a ColorizerModel or an SCFTGenerator.")
SIZE_OPTION = click.option(
    "--size", type=IMAGE_SIZE, default=None,
    help="Network size, N or HxW, rounded to a multiple of the model's stride (16). Default: the "
         "size the model was trained at, else each sketch's size rounded.")
FORCE_OPTION = click.option("--force", is_flag=True, help="Overwrite existing output files.")


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="keras-scft")
def main() -> None:
    """Reference-based sketch colorization (SCFT, Lee et al. CVPR 2020) in Keras 3.

    Sketches are line art on white paper (dark lines); references are RGB images whose
    colours the result takes. Images may have any size, as png, jpg, webp or bmp files.
    """


# ---- colorize ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class ColorizeJob:
    """One output image: which sketch, which reference, where to write."""

    sketch: Path
    reference: Path
    out: Path


@main.command("colorize", short_help="Colorize sketches with the colours of references.")
@MODEL_OPTION
@click.option("--sketch", required=True, type=click.Path(exists=True, path_type=Path),
              help="A sketch image, or a folder of them (searched recursively).")
@click.option("--reference", required=True, type=click.Path(exists=True, path_type=Path),
              help="A reference image (used for every sketch), or a folder whose images pair with "
                   "the sketches by relative path without extension (a/001.png <-> a/001.jpg).")
@click.option("--out", required=True, type=click.Path(path_type=Path),
              help="Output .png file for one sketch (or an existing folder to write <name>.png "
                   "into); output folder for a sketch folder, mirroring its layout.")
@SIZE_OPTION
@click.option("--batch-size", type=click.IntRange(min=1), default=8, show_default=True,
              help="Images per forward pass (consecutive images of equal size are batched).")
@FORCE_OPTION
def colorize_command(model_path: Path, sketch: Path, reference: Path, out: Path, size,
                     batch_size: int, force: bool) -> None:
    """Colorize sketches with the colours of reference images; writes RGB PNGs at each
    sketch's size. Set KERAS_SCFT_QUIET=1 to hide the progress bar.
    """
    jobs, unmatched = plan_colorize(sketch, reference, out)
    if unmatched:
        click.echo(f"warning: {len(unmatched)} sketch(es) have no reference with the same name in "
                   f"{reference} and are skipped, e.g. {', '.join(unmatched[:3])}", err=True)
    _refuse_existing([job.out for job in jobs], force)
    for job in jobs:  # cheap header checks: a non-image fails before any work is done
        _check_readable(job.sketch, "--sketch")
    for path in sorted({job.reference for job in jobs}):
        _check_readable(path, "--reference")
    generator = _load_generator(model_path)
    read_reference = functools.lru_cache(maxsize=1)(lambda path: _read(path, "rgb", "--reference"))
    progress = sketch.is_dir() and not os.environ.get("KERAS_SCFT_QUIET")
    with tqdm(total=len(jobs), unit="image", desc="colorize", disable=not progress) as bar:
        batch: list[tuple[ColorizeJob, np.ndarray, np.ndarray]] = []
        for job in jobs:
            item = (job, _read(job.sketch, "gray", "--sketch"), read_reference(job.reference))
            if batch and (len(batch) == batch_size or _shapes(batch[0]) != _shapes(item)):
                _colorize_batch(generator, batch, size)
                bar.update(len(batch))
                batch = []
            batch.append(item)
        if batch:
            _colorize_batch(generator, batch, size)
            bar.update(len(batch))
    click.echo(f"wrote {len(jobs)} image(s) to {out}")


def plan_colorize(sketch: Path, reference: Path, out: Path) -> tuple[list[ColorizeJob], list[str]]:
    """Pair sketches with references and name the outputs.

    Returns:
        (jobs sorted by sketch name, names of sketches without a reference).

    Raises:
        click.BadParameter: impossible combination (a sketch file with a reference folder,
            an output that is a file where a folder is needed, two images with one name).
    """
    if sketch.is_file():
        if reference.is_dir():
            raise click.BadParameter(f"{reference} is a folder but --sketch {sketch} is one image; "
                                     "pass one reference image", param_hint="--reference")
        if out.is_dir():
            out = out / f"{sketch.stem}.png"
        elif out.suffix.lower() != ".png":
            raise click.BadParameter(f"output file {out} must end in .png (or be an existing folder)",
                                     param_hint="--out")
        return [ColorizeJob(sketch, reference, out)], []
    if out.exists() and not out.is_dir():
        raise click.BadParameter(f"{out} is a file, but --sketch {sketch} is a folder: pass an "
                                 "output folder", param_hint="--out")
    _refuse_nested(out, sketch, "--out")
    sketches = _images_by_name(sketch, "--sketch")
    if reference.is_file():
        return [ColorizeJob(path, reference, out / f"{name}.png") for name, path in sketches.items()], []
    references = _images_by_name(reference, "--reference")
    jobs = [ColorizeJob(path, references[name], out / f"{name}.png")
            for name, path in sketches.items() if name in references]
    if not jobs:
        raise click.BadParameter(
            f"no image in {reference} has the name of a sketch in {sketch} (e.g. sketch "
            f"{next(iter(sketches))!r}, reference {next(iter(references))!r}); pairs share their "
            "path relative to each folder, ignoring the extension", param_hint="--reference")
    return jobs, [name for name in sketches if name not in references]


def _colorize_batch(generator, batch, size) -> None:
    """Colorize ``[(job, sketch, reference), ...]`` (equal shapes) and write the outputs."""
    from keras_scft.inference import colorize

    jobs, sketches, references = zip(*batch)
    images = colorize(generator, np.stack(sketches), np.stack(references), size=size,
                      batch_size=len(batch))
    for job, image in zip(jobs, images):
        write_png(job.out, image)


def _shapes(item) -> tuple:
    return item[1].shape, item[2].shape


# ---- sketchify --------------------------------------------------------------------------------

@main.command("sketchify", short_help="Make sketches from images with XDoG.")
@click.argument("images", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Output folder: <name>.png per image (a folder's images keep their relative path).")
@click.option("--sigma", type=click.FloatRange(min=0.01), default=0.4, show_default=True,
              help="Gaussian scale in pixels; larger gives thicker, fewer lines (raise it for big photos).")
@click.option("--k", type=click.FloatRange(min=1.0, min_open=True), default=4.5, show_default=True,
              help="Ratio of the second Gaussian's scale to the first.")
@click.option("--p", type=click.FloatRange(min=0.0), default=19.0, show_default=True,
              help="Edge sharpening strength.")
@click.option("--eps", type=float, default=0.01, show_default=True,
              help="Ink threshold on the filtered luminance: higher values give more ink.")
@click.option("--phi", type=click.FloatRange(min=0.0, min_open=True), default=1e9, show_default=True,
              help="Softness of the threshold; the default gives binary lines.")
@FORCE_OPTION
def sketchify_command(images: tuple[Path, ...], out: Path, sigma: float, k: float, p: float,
                      eps: float, phi: float, force: bool) -> None:
    """Turn photos or drawings into sketches with XDoG (the training sketch extractor, with
    fixed parameters). IMAGES are image files or folders; writes gray PNGs, black lines on white.
    """
    targets: dict[Path, Path] = {}  # output -> input
    for item in images:
        if item.is_dir():
            _refuse_nested(out, item, "--out")
        named = {item.stem: item} if item.is_file() else _images_by_name(item, "IMAGES")
        for name, path in named.items():
            target = out / f"{name}.png"
            if target in targets:
                raise click.BadParameter(f"{targets[target]} and {path} would both be written to "
                                         f"{target}; rename one", param_hint="IMAGES")
            targets[target] = path
    _refuse_existing(list(targets), force)
    for path in targets.values():
        _check_readable(path, "IMAGES")

    from keras_scft.augment.backend import active_backend
    from keras_scft.augment.sketch import XDoGRanges, xdog_sketch
    from keras_scft.inference import to_uint8, to_unit

    backend = active_backend()
    params = {"sigma": sigma, "k": k, "p": p, "eps": eps, "phi": phi}
    radius = XDoGRanges(**{name: (value, value) for name, value in params.items()}).kernel_radius()
    batch_params = {name: np.full((1,), value, np.float32) for name, value in params.items()}
    progress = len(targets) > 1 and not os.environ.get("KERAS_SCFT_QUIET")
    for target, path in tqdm(targets.items(), unit="image", desc="sketchify", disable=not progress):
        rgb = to_unit(_read(path, "rgb", "IMAGES"))[None]
        write_png(target, to_uint8(xdog_sketch(backend, rgb, batch_params, radius))[0])
    click.echo(f"wrote {len(targets)} sketch(es) to {out}")


# ---- attention --------------------------------------------------------------------------------

@main.command("attention", short_help="Draw where the sketch attends in the reference.")
@MODEL_OPTION
@click.option("--sketch", required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="The sketch image.")
@click.option("--reference", required=True,
              type=click.Path(exists=True, dir_okay=False, path_type=Path), help="The reference image.")
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Output .png file.")
@click.option("--points", type=PointsType(), default=None,
              help="Query points on the sketch in pixels, 'x,y;x,y' (at most 8). Default: the "
                   "centres of a --grid x --grid tiling.")
@click.option("--grid", type=click.IntRange(1, 2), default=2, show_default=True,
              help="Default query points: a GRID x GRID tiling (1 or 2: 1 or 4 points).")
@click.option("--top-k", type=click.IntRange(min=1), default=3, show_default=True,
              help="Reference cells outlined per query point.")
@SIZE_OPTION
@click.option("--panel-height", type=click.IntRange(min=16), default=256, show_default=True,
              help="Height in pixels of each panel.")
@FORCE_OPTION
def attention_command(model_path: Path, sketch: Path, reference: Path, out: Path, points, grid: int,
                      top_k: int, size, panel_height: int, force: bool) -> None:
    """Show where the sketch looks in the reference (the paper's Fig. 7): the sketch with
    query points in distinct colours | the reference with the top-k attended feature cells of
    each point outlined in its colour | the colorized result.
    """
    if out.suffix.lower() != ".png":
        raise click.BadParameter(f"output file {out} must end in .png", param_hint="--out")
    _refuse_existing([out], force)
    sketch_pixels = _read(sketch, "gray", "--sketch")
    reference_pixels = _read(reference, "rgb", "--reference")
    height, width = sketch_pixels.shape[:2]
    from keras_scft.attention_view import (
        attention_for_pair,
        attention_view,
        check_points,
        grid_points,
    )
    from keras_scft.inference import colorize

    if points is None:
        points = grid_points(height, width, grid, grid)
    try:
        check_points(points, (height, width))
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint="--points") from error
    generator = _load_generator(model_path)
    alpha, cells = attention_for_pair(generator, sketch_pixels, reference_pixels, size)
    colorized = colorize(generator, sketch_pixels[None], reference_pixels[None], size=size)[0]
    view = attention_view(sketch_pixels, reference_pixels, alpha, cells, points, colorized,
                          min(top_k, alpha.shape[1]), panel_height)
    write_png(out, view)
    click.echo(f"wrote {out} ({len(points)} query points, {cells[0]}x{cells[1]} feature grid)")


# ---- export -----------------------------------------------------------------------------------

@main.command("export", short_help="Export a model as a TF Serving SavedModel.")
@click.argument("model_path", metavar="MODEL", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.argument("out_dir", metavar="OUT_DIR", type=click.Path(file_okay=False, path_type=Path))
@click.option("--version", "version", type=click.IntRange(min=1), default=None,
              help="Version folder number. Default: one above the highest in OUT_DIR (1 if none).")
@SIZE_OPTION
@click.option("--force", is_flag=True, help="Replace an existing version folder.")
def export_command(model_path: Path, out_dir: Path, version: int | None, size, force: bool) -> None:
    """Export MODEL (.keras) as a TF Serving SavedModel in OUT_DIR/<version>/.

    Signatures: serving_default (uint8 sketch [N,H,W,1 or 3] + reference [N,h,w,3] ->
    colorized uint8 [N,H,W,3]), colorize_float (the same in float32 [-1, 1]) and generate (the
    bare generator at the network size). See docs/serving.md.
    """
    from keras_scft.export import export_saved_model

    generator = _load_generator(model_path)
    try:
        path = export_saved_model(generator, out_dir, version=version, size=size, force=force)
    except (FileExistsError, NotADirectoryError) as error:
        raise click.UsageError(str(error)) from error
    click.echo(f"wrote {path}")


# ---- shared helpers ---------------------------------------------------------------------------

def _images_by_name(folder: Path, option: str) -> dict[str, Path]:
    """``{relative path without extension: file}`` of the images under ``folder``, sorted."""
    try:
        paths = list_images(folder)
    except (FileNotFoundError, ValueError) as error:
        raise click.BadParameter(str(error), param_hint=option) from error
    names = [path.relative_to(folder).with_suffix("").as_posix() for path in paths]
    duplicates = [name for name, count in Counter(names).items() if count > 1]
    if duplicates:
        clash = [str(path) for path, name in zip(paths, names) if name == duplicates[0]]
        raise click.BadParameter(f"{' and '.join(clash)} have the same name; rename one", param_hint=option)
    return dict(zip(names, paths))


def _refuse_nested(out: Path, folder: Path, option: str) -> None:
    """An output folder inside an input folder would be read back as input by the next run."""
    if out.resolve().is_relative_to(folder.resolve()):
        raise click.BadParameter(f"output folder {out} is inside the input folder {folder}; "
                                 "pick one outside it", param_hint=option)


def _refuse_existing(outputs: list[Path], force: bool) -> None:
    existing = [path for path in outputs if path.exists()]
    if existing and not force:
        raise click.UsageError(f"{len(existing)} output file(s) already exist, e.g. {existing[0]}; "
                               "pass --force to overwrite them")


def _check_readable(path: Path, option: str) -> None:
    try:
        check_image_header(path)
    except (UnreadableImageError, OSError) as error:
        raise click.BadParameter(str(error), param_hint=option) from error


def _read(path: Path, mode: str, option: str) -> np.ndarray:
    try:
        return read_image(path, mode)
    except (UnreadableImageError, OSError) as error:
        raise click.BadParameter(str(error), param_hint=option) from error


def _load_generator(path: Path):
    from keras_scft.inference import load_generator

    try:
        return load_generator(path)
    except Exception as error:  # Keras raises many types for a file it cannot load
        raise click.BadParameter(f"cannot load model {path}: {error}", param_hint="--model") from error
