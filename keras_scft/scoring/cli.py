"""`keras-scft score` / `tools/score.py`: every metric of a trained model in one JSON file."""

from __future__ import annotations

import datetime
import hashlib
import os
from pathlib import Path

import click

from keras_scft.scoring.report import (
    METRIC_DEFINITIONS,
    PAIRINGS,
    SCORES_FORMAT,
    TASK_METRICS,
    format_table,
    write_scores,
)
from keras_scft.utils.registry import RegistryFetchError

ALL_METRICS = tuple(m for metrics in TASK_METRICS.values() for m in metrics)
DEFAULT_METRICS = "psnr,ssim,lpips,fid,kid,bg,corr"


def _metric_list(ctx, param, value: str) -> list[str]:
    names = [name.strip() for name in value.split(",") if name.strip()]
    unknown = [name for name in names if name not in ALL_METRICS]
    if unknown:
        raise click.BadParameter(f"unknown metric(s) {', '.join(unknown)}; choose from "
                                 f"{', '.join(ALL_METRICS)}")
    return names


def _category_list(ctx, param, value: str) -> list[str]:
    return [name.strip() for name in value.split(",") if name.strip()]


def _temperature(ctx, param, value: float | None) -> float | None:
    if value is None:
        return None
    from keras_scft.layers.scft import check_temperature

    try:
        return check_temperature(value)
    except ValueError as error:
        raise click.BadParameter(str(error)) from None


@click.command("score")
@click.option("--model", "model_path", required=True, type=click.Path(path_type=Path),
              help="Trained model: a .keras file of a ColorizerModel or SCFTGenerator.")
@click.option("--data", help="Evaluation images: a prepared OpenMoji folder, an image folder, or "
              "JSON (a file or inline) holding a data source config such as {\"type\": \"folder\", "
              "\"root\": \"photos/\"} or a training recipe. Needed by every metric but sc_psnr.")
@click.option("--metrics", default=DEFAULT_METRICS, show_default=True, callback=_metric_list,
              help=f"Comma-separated, from: {', '.join(ALL_METRICS)}. sc_psnr is added when "
                   "--spair is given.")
@click.option("--split", type=click.Choice(["train", "val", "test"]), default="test",
              show_default=True, help="Split of OpenMoji data and of SPair-71k (train = trn).")
@click.option("--size", type=click.IntRange(min=16), default=None,
              help="Evaluation size S (square, a multiple of the generator's stride); default: "
                   "the size the model was trained at, else 256.")
@click.option("--limit", type=click.IntRange(min=1), default=None,
              help="Use the first N images of the data, and the first N SPair pairs per category.")
@click.option("--batch-size", type=click.IntRange(min=1), default=16, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True,
              help="Seed of the self-reference warps / colour shifts and the cross-reference pairing.")
@click.option("--pairing", type=click.Choice(PAIRINGS), default="random", show_default=True,
              help="References of the cross-reference task: another image of the set at random, or "
                   "another emoji of the same OpenMoji subgroup (two person roles, two birds: related "
                   "content; prepared OpenMoji data only), scored on the images that have one.")
@click.option("--attention-temperature", type=float, default=None, callback=_temperature,
              help="SCFT softmax temperature to colorize with (> 0; above 1 each sketch cell mixes "
                   "more reference cells). Default: the model's own (1 unless it was saved with another).")
@click.option("--color-shift", type=click.FloatRange(min=0.0), default=1.0, show_default=True,
              help="Largest per-channel colour shift (in [-1, 1] units) of the self-reference task's "
                   "references and targets: the paper's 1.0, or the strength a model was trained with "
                   "(recipe field augment.color_shift).")
@click.option("--keep-white", is_flag=True,
              help="Leave near-white paper unshifted in the self-reference task's references and "
                   "targets, as models trained with augment.keep_white saw it (default: the paper's "
                   "shift of every pixel).")
@click.option("--spair", "spair_root", type=click.Path(path_type=Path), default=None,
              help="SPair-71k folder (holding PairAnnotation/ and JPEGImages/): adds SC-PSNR.")
@click.option("--categories", default="cat,dog,car", show_default=True, callback=_category_list,
              help="SPair-71k categories for SC-PSNR (the paper's: cat, dog, car).")
@click.option("--patch-size", type=click.IntRange(min=1), default=None,
              help="SC-PSNR patch side in pixels at size S; default S / 16.")
@click.option("--fid-weights", default="fid", show_default=True,
              help='FID Inception weights: "fid" (converted once into the keras_scft cache), the '
                   'path of a converted .npz, or "random" (smoke tests only: meaningless numbers).')
@click.option("--lpips-weights", type=click.Choice(["lpips", "random"]), default="lpips",
              show_default=True, help='LPIPS weights; "random" is for smoke tests only.')
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Where to write the scores JSON.")
@click.option("--force", is_flag=True, help="Overwrite an existing --out file.")
@click.option("--save-outputs", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Also write the colorized images (self_reference/, cross_reference/ PNGs) here.")
def score_command(model_path: Path, data: str | None, metrics: list[str], split: str,
                  size: int | None, limit: int | None, batch_size: int, seed: int, color_shift: float,
                  keep_white: bool, spair_root: Path | None, categories: list[str], patch_size: int | None,
                  fid_weights: str, lpips_weights: str, out: Path, force: bool,
                  save_outputs: Path | None, pairing: str, attention_temperature: float | None) -> None:
    """Score a trained model: self-reference PSNR/SSIM/LPIPS (with the copy-the-reference
    baseline), cross-reference FID/KID, attention-correspondence accuracy, and SC-PSNR on
    SPair-71k. Writes a JSON file and prints a table. Set KERAS_SCFT_QUIET=1 to hide the
    progress bars.
    """
    if out.exists() and not force:
        raise click.UsageError(f"output file {out} already exists; pass --force to overwrite it")
    if spair_root is not None and "sc_psnr" not in metrics:
        metrics.append("sc_psnr")
    if "sc_psnr" in metrics and spair_root is None:
        raise click.UsageError("metric sc_psnr needs --spair (the SPair-71k folder)")
    needs_data = [m for m in metrics if m != "sc_psnr"]
    if needs_data and data is None:
        raise click.UsageError(f"metric(s) {', '.join(needs_data)} need --data")
    try:
        scores = _score(model_path, data, metrics, split, size, limit, batch_size, seed, spair_root,
                        categories, patch_size, fid_weights, lpips_weights, save_outputs, color_shift,
                        keep_white, pairing, attention_temperature)
    except (FileNotFoundError, ValueError, RegistryFetchError) as error:  # incl. unreadable images
        raise click.ClickException(str(error)) from error

    write_scores(out, scores)
    click.echo(format_table(scores["tasks"]))
    click.echo(f"wrote {out}")


def _score(model_path: Path, data: str | None, metrics: list[str], split: str, size: int | None,
           limit: int | None, batch_size: int, seed: int, spair_root: Path | None,
           categories: list[str], patch_size: int | None, fid_weights: str, lpips_weights: str,
           save_outputs: Path | None = None, color_shift: float = 1.0, keep_white: bool = False,
           pairing: str = "random", attention_temperature: float | None = None) -> dict:
    """Set up (model, data, metric networks: every input error surfaces here), then run the tasks."""
    import keras  # imported here, as the modules below, so that `keras-scft --help` stays fast

    import keras_scft
    from keras_scft.data.spair import read_spair_pairs, spair_split
    from keras_scft.metrics.sc_psnr import default_patch_size
    from keras_scft.scoring import tasks
    from keras_scft.scoring.evalset import (
        data_source_config,
        evaluation_augment,
        load_eval_set,
    )

    progress = not os.environ.get("KERAS_SCFT_QUIET")
    generator = _load_generator(model_path)
    if attention_temperature is not None:
        generator.attention_temperature = attention_temperature
    size = _evaluation_size(generator, size)
    settings = {
        "model": {"path": str(model_path.resolve()), "sha256": _sha256(model_path)},
        "split": split, "size": size, "batch_size": batch_size, "seed": seed, "limit": limit,
        "pairing": pairing, "attention_temperature": generator.attention_temperature,
        "metrics": {m: METRIC_DEFINITIONS[m] for m in metrics},
        "keras_scft_version": keras_scft.__version__, "keras_version": keras.__version__,
        "backend": keras.backend.backend(), "devices": keras.distribution.list_devices(),
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
    pairs = None
    if "sc_psnr" in metrics:
        pairs = read_spair_pairs(spair_root, split, categories, limit)
        patch_size = patch_size or default_patch_size(size)
        settings["spair"] = {"root": str(spair_root.resolve()), "split": spair_split(split),
                             "categories": categories, "pairs_per_category_limit": limit,
                             "patch_size": patch_size}
    evalset = augment = None
    if any(m != "sc_psnr" for m in metrics):
        config = data_source_config(data, split)
        evalset = load_eval_set(config, size, limit, progress)
        settings["data"] = {"argument": data, "source": config, "n_images": len(evalset),
                            "line_art": evalset.line_art}
        if {"fid", "kid"} & set(metrics) and len(evalset) < 2:
            raise ValueError(f"fid and kid need at least 2 images, the data gave {len(evalset)}")
        tasks.reference_partners(evalset, pairing, seed)  # its errors (no categories, no partners) before any work
        augment = evaluation_augment(generator.stride, seed, color_shift, keep_white)
        settings["self_augment"] = {k: v for k, v in augment.get_config().items()
                                    if k not in ("name", "trainable", "dtype")}
    lpips = _lpips(lpips_weights) if "lpips" in metrics else None
    inception = _inception(fid_weights) if {"fid", "kid"} & set(metrics) else None
    settings["weights"] = {**({"lpips": lpips_weights} if lpips else {}),
                           **({"fid": fid_weights} if inception else {})}

    def wanted(task: str) -> list[str]:
        return [m for m in TASK_METRICS[task] if m in metrics]

    results = {}
    if wanted("self_reference"):
        results["self_reference"] = tasks.self_reference(generator, evalset, augment, wanted("self_reference"),
                                                         lpips, batch_size, progress, save_outputs)
    if wanted("cross_reference") or (save_outputs is not None and evalset is not None):
        results["cross_reference"] = tasks.cross_reference(generator, evalset, seed, wanted("cross_reference"),
                                                           inception, batch_size, progress, save_outputs,
                                                           pairing)
    if wanted("correspondence"):
        results["correspondence"] = tasks.correspondence(generator, evalset, augment, batch_size, progress)
    if pairs is not None:
        results["sc_psnr"] = tasks.spair_sc_psnr(generator, pairs, size, patch_size, batch_size, progress)
    return {"format": SCORES_FORMAT, "settings": settings, "tasks": results}


def _load_generator(path: Path):
    from keras_scft.inference import load_generator

    try:
        return load_generator(path)
    except (FileNotFoundError, ValueError, TypeError) as error:
        raise click.ClickException(f"--model: {error}") from error
    except Exception as error:  # Keras raises many types for a damaged .keras file
        raise click.ClickException(f"--model: could not load {path}: {type(error).__name__}: {error}"
                                   ) from error


def _evaluation_size(generator, size: int | None) -> int:
    if size is None:
        trained = generator.image_size
        if trained and trained[0] != trained[1]:
            raise click.UsageError(f"the model was trained at {trained[0]}x{trained[1]}; scoring "
                                   "uses square images, pass --size")
        size = trained[0] if trained else 256
    if size % generator.stride:
        raise click.BadParameter(f"{size} is not a multiple of the generator's stride "
                                 f"{generator.stride}", param_hint="--size")
    return size


def _lpips(weights: str):
    from keras_scft.metrics.lpips import LPIPS

    return LPIPS(None if weights == "random" else weights)


def _inception(weights: str):
    from keras_scft.metrics.inception import fid_inception

    return fid_inception(None if weights == "random" else weights)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
