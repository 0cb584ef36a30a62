"""Train a ColorizerModel from a validated recipe (see :mod:`keras_scft.recipes`).

Run folder layout (``output.dir``, default ``runs/<name>``)::

    recipe.json           the validated recipe of the run
    checkpoints/          ckpt-<step>.keras, full training state, newest ``keep`` kept
    samples/              step-<step>.png grids: sketch | reference | output | target
    logs/                 TensorBoard scalars
    history.json          per-"epoch" (log interval) metrics: the learning curves (val_*: at
                          the validation interval and the last step, null between)
    generator.keras       the trained generator (at the end)
    final_metrics.json    last training and validation metrics, steps, wall time

Restarting the same command resumes from the newest complete checkpoint: model, both
optimizers, step counter, augmentation seed state, and the data order (batches are a
function of the seed and the global step).

Multi-worker runs (``distribution.strategy = "multi_worker"``, see :mod:`keras_scft.distribute`):
every worker runs this same function. Each feeds its own shard of every global batch; the
chief alone writes the run folder, which must be on storage every worker reads (they all
resume from the chief's checkpoints). The other workers still take part in every step that
Keras may run as a collective computation (saving a checkpoint or the generator: on JAX,
creating a variable under a multi-process distribution is one) and write those files into a
scratch folder of their own, deleted at the end.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

import keras

from keras_scft.augment.example import SelfAugment
from keras_scft.data.array_cache import load_arrays_cached, validation_examples_cached
from keras_scft.data.io import write_atomic
from keras_scft.data.pipeline import (ImageBatches, augmented_tf_dataset, load_arrays, shard_of_batches, steps_for,
                                      validation_examples)
from keras_scft.data.sources import OpenMojiSource, open_source
from keras_scft.distribute import Placement, ProcessSettings, distribute
from keras_scft.layers.discriminator import build_discriminator
from keras_scft.layers.generator import build_generator
from keras_scft.model import ColorizerModel
from keras_scft.recipes import RecipeError
from keras_scft.schedules import LinearDecayTail
from keras_scft.training.callbacks import (Checkpointer, NonFiniteLossError, SampleGrid, StopOnNonFinite,
                                           Throughput)
from keras_scft.training.checkpoints import list_checkpoints, load_latest
from keras_scft.training.tensorboard import ScalarLog
from keras_scft.utils.lazy_tensorflow import tensorflow_left_unimported
from keras_scft.utils.paths import cache_dir

if TYPE_CHECKING:
    from keras_scft.steps.exported import ExportedStepCache

VALIDATION_EXAMPLES = 64


def _say(message: str) -> None:
    if not os.environ.get("KERAS_SCFT_QUIET"):
        print(message, flush=True)


def open_training_data(recipe: dict):
    """(train source, validation source or None) of a recipe's ``data`` section."""
    data = recipe["data"]
    if data["type"] == "openmoji":
        root = Path(data["root"])
        if not (root / "manifest.json").is_file():
            if not data["prepare"]:
                raise RecipeError(f"recipe field \"data.root\": {root} is not a prepared OpenMoji folder "
                                  "(no manifest.json); run `keras-scft data openmoji --out "
                                  f"{root}` or set data.prepare to true")
            from keras_scft.data.openmoji import prepare_openmoji

            _say(f"preparing OpenMoji in {root} (one time)")
            prepare_openmoji(root, size=max(256, data["image_size"]), progress=True)
        return OpenMojiSource(root, data["split"]), OpenMojiSource(root, "val")
    spec = {"type": data["type"]}
    if data["type"] == "paired":
        for key in ("sketch_dir", "color_dir"):
            if not Path(data[key]).is_dir():
                raise RecipeError(f"recipe field \"data.{key}\": folder {data[key]} does not exist")
        spec.update(sketch_dir=data["sketch_dir"], color_dir=data["color_dir"])
    else:
        if not Path(data["root"]).exists():
            raise RecipeError(f"recipe field \"data.root\": {data['root']} does not exist")
        spec["root"] = data["root"]
    try:
        return open_source(spec), None
    except (ValueError, FileNotFoundError) as error:
        raise RecipeError(f"recipe field \"data\": {error}") from None


def build_augment(recipe: dict, stride: int, seed: int) -> SelfAugment:
    a = recipe["augment"]
    return SelfAugment(
        feature_stride=stride, color_shift=a["color_shift"], keep_white=a["keep_white"], tps_grid=a["tps_grid"],
        tps_jitter=a["tps_jitter"], tps_scale=a["tps_scale"], tps_rotation=a["tps_rotation"],
        tps_translation=a["tps_translation"], fill_mode=a["fill_mode"], fill_value=a["fill_value"],
        xdog=a["xdog"], given_sketch_prob=a["given_sketch_prob"], max_offset=a["max_offset"], seed=seed,
    )


def learning_rates(optimizer: dict, total_steps: int | None) -> tuple:
    """The recipe's (generator, discriminator) learning rates: floats, or with
    ``optimizer.decay_fraction`` > 0, :class:`LinearDecayTail` schedules over ``total_steps``."""
    rates = optimizer["g_learning_rate"], optimizer["d_learning_rate"]
    if not optimizer["decay_fraction"]:
        return rates
    if total_steps is None:
        raise ValueError("optimizer.decay_fraction > 0 needs the run's total steps")
    decay = max(1, round(optimizer["decay_fraction"] * total_steps))
    return tuple(LinearDecayTail(rate, total_steps, decay) for rate in rates)


def decay_total_steps(model: ColorizerModel) -> int | None:
    """The total steps of a (restored) model's decaying learning rate; None for a constant one."""
    rate = model.g_optimizer.get_config()["learning_rate"]
    if isinstance(rate, dict) and rate.get("class_name") == "LinearDecayTail":
        return int(rate["config"]["total_steps"])
    return None


def build_model(recipe: dict, augment_in_step: bool, total_steps: int | None = None) -> ColorizerModel:
    """A compiled ColorizerModel for a recipe (call inside the distribution scope);
    ``total_steps``: the run's, needed when the recipe's learning rates decay."""
    m, opt, loss = recipe["model"], recipe["optimizer"], recipe["loss"]
    size = recipe["data"]["image_size"]
    generator = build_generator(m["widths"], m["downsample"], m["norm"], m["residual_blocks"],
                                m["decoder_widths"], m["stop_gradient_attention"], image_size=(size, size))
    augment = build_augment(recipe, generator.stride, recipe["seed"]) if augment_in_step else None
    needs_vgg = loss["weights"]["perceptual"] or loss["weights"]["style"]
    model = ColorizerModel(generator=generator,
                           discriminator=build_discriminator(m["discriminator_widths"], m["spectral_norm"]),
                           perceptual=m["perceptual"] if needs_vgg else None, augment=augment)
    # The generator's weight average: the optimizer keeps it and writes it into the generator
    # when fit() ends (checkpoints keep the raw weights and the average, so resuming goes on).
    ema = {"use_ema": True, "ema_momentum": opt["g_ema"]} if opt["g_ema"] else {}
    g_rate, d_rate = learning_rates(opt, total_steps)
    model.compile(
        g_optimizer=keras.optimizers.Adam(g_rate, beta_1=opt["beta_1"], beta_2=opt["beta_2"], **ema),
        d_optimizer=keras.optimizers.Adam(d_rate, beta_1=opt["beta_1"], beta_2=opt["beta_2"]),
        loss_weights=loss["weights"], gan_loss=loss["gan"], triplet_margin=loss["triplet_margin"],
        triplet_cells=loss["triplet_cells"], cross_reference=loss["cross_reference"],
        cross_reference_extra=loss["cross_reference_extra"],
        steps_per_execution=recipe["train"]["steps_per_execution"],
    )
    return model


def _enable_compile_cache(setting: str | None) -> None:
    if keras.backend.backend() != "jax" or setting == "off":
        return
    import jax

    folder = setting or str(cache_dir("jax_compilation"))
    jax.config.update("jax_compilation_cache_dir", folder)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)


def _step_cache(recipe: dict, placement: Placement) -> ExportedStepCache | None:
    """JAX, one process, no Keras distribution: the folder of kept train steps, already loading
    (in a thread) the one these settings had last time: the recipe without its output section,
    name and description, which do not change the step."""
    setting = recipe["output"]["step_cache"]
    if keras.backend.backend() != "jax" or setting == "off":
        return None
    from keras_scft.steps.exported import ExportedStepCache

    cache = ExportedStepCache(setting or cache_dir("jax_steps"))
    if placement.workers == 1 and keras.distribution.distribution() is None:
        cache.preload({k: v for k, v in recipe.items() if k not in ("output", "name", "description")})
    return cache


def _write_json(path: Path, payload) -> None:
    write_atomic(path, (json.dumps(payload, indent=2, default=float) + "\n").encode())


def _place(recipe: dict, where: str, processes: ProcessSettings | None) -> Placement:
    """Set up the recipe's distribution strategy (first thing: multi-worker engines must start
    before the backend computes anything)."""
    backend, strategy = keras.backend.backend(), recipe["distribution"]["strategy"]
    multi_process_jax = strategy == "multi_worker" and backend == "jax"
    if processes is not None and processes != ProcessSettings() and not multi_process_jax:
        raise RecipeError("--coordinator / --num-processes / --process-id set the processes of a JAX multi-worker "
                          f"run; this run has distribution.strategy \"{strategy}\" on {backend} (TensorFlow workers "
                          "read TF_CONFIG)")
    if strategy == "multi_worker" and backend == "tensorflow" and where == "step":
        raise RecipeError('recipe field "augment.where": "step" is not supported with distribution.strategy '
                          '"multi_worker" on tensorflow; use "data" (or "auto"): each worker then augments its '
                          "own shard of the batch in tf.data")
    return distribute(strategy, recipe["distribution"]["devices"], processes)


def _multi_worker_tf_data(placement: Placement, arrays, batch: int, per_epoch: int, seed: int, start: int,
                          steps: int, augment):
    """A tf.distribute dataset: every worker builds the tf.data pipeline of its own replicas' shards.

    Auto-sharding is OFF on purpose: the source is a Python generator of step-indexed batches
    (nothing for FILE sharding to split), and DATA sharding would have every worker read and
    augment the whole global batch to keep 1/n of it. Here worker w reads and augments only
    the rows of its replicas (``ImageBatches(shard=...)``), with the augmentation draws of the
    whole batch sliced to those rows, so the examples of a step do not depend on the number
    of workers and a restart at step s resumes the exact sequence.
    """
    import tensorflow as tf

    def worker_dataset(context: tf.distribute.InputContext):
        local = context.num_replicas_in_sync // context.num_input_pipelines
        shards = [ImageBatches(arrays, batch, per_epoch, seed=seed, start_step=start,
                               shard=context.input_pipeline_id * local + r, num_shards=context.num_replicas_in_sync)
                  for r in range(local)]
        options = tf.data.Options()
        options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.OFF
        return augmented_tf_dataset(shards, augment, steps).with_options(options)

    return placement.tf_strategy.distribute_datasets_from_function(worker_dataset)


class ChiefSampleGrid(SampleGrid):
    """:class:`SampleGrid` of a multi-worker run, made by the chief alone: the generator runs on
    host copies of its weights, outside the strategy (its ``predict_on_batch`` is a computation
    over every worker's devices, which all workers would have to join)."""

    def generate(self):
        generator = self.model.generator
        host = [[keras.ops.convert_to_numpy(v) for v in variables]
                for variables in (generator.trainable_variables, generator.non_trainable_variables)]
        outputs, _ = generator.stateless_call(*host, self.inputs, training=False)
        return keras.ops.convert_to_numpy(outputs["image"])


def train(recipe: dict, resume: bool = True, progress: bool = True, processes: ProcessSettings | None = None) -> dict:
    """Train (or resume) the run described by ``recipe``; returns the final metrics.

    ``processes``: this process's place in a JAX multi-worker run (command-line flags).
    Raises :class:`RecipeError` for a bad recipe and ``keras_scft.distribute.DistributionError``
    for missing or inconsistent cluster settings (both name what to fix). On backends other
    than TensorFlow, the run does not import TensorFlow (:mod:`keras_scft.utils.lazy_tensorflow`).
    """
    with tensorflow_left_unimported():
        return _train(recipe, resume, progress, processes)


def _train(recipe: dict, resume: bool, progress: bool, processes: ProcessSettings | None) -> dict:
    started = time.perf_counter()
    backend = keras.backend.backend()
    train_cfg, out_cfg = recipe["train"], recipe["output"]
    run_dir = Path(out_cfg["dir"] or Path("runs") / recipe["name"])
    _enable_compile_cache(out_cfg["compile_cache"])
    where = recipe["augment"]["where"]
    if where == "auto":
        where = "data" if backend == "tensorflow" else "step"
    if where == "data" and backend != "tensorflow":
        raise RecipeError('recipe field "augment.where": "data" runs the augmentation in tf.data and '
                          f'needs the tensorflow backend (running {backend}); use "step" or "auto"')
    placement = _place(recipe, where, processes)
    step_cache = _step_cache(recipe, placement)  # loads the kept train step while data and model are made
    if train_cfg["mixed_precision"]:
        keras.config.set_dtype_policy("mixed_bfloat16")

    phases = {}  # seconds from the start to the end of each part of the set-up (final_metrics.json)
    train_source, val_source = open_training_data(recipe)
    size = recipe["data"]["image_size"]
    load = load_arrays_cached if recipe["data"]["cache"] else load_arrays
    arrays = load(train_source, size, recipe["data"]["limit"], progress=progress)
    if val_source is None:  # hold out the end of a seeded permutation
        import numpy as np

        n = len(arrays["image"])
        held = int(round(n * recipe["data"]["validation_split"]))
        order = np.random.default_rng(recipe["seed"]).permutation(n)
        val_arrays = {k: v[order[n - held:]] for k, v in arrays.items()} if held else None
        arrays = {k: v[order[: n - held]] for k, v in arrays.items()}
    else:
        val_arrays = load_arrays(val_source, size, VALIDATION_EXAMPLES, progress=False)
    phases["data"] = time.perf_counter() - started
    batch = train_cfg["batch_size"]
    total = steps_for(len(arrays["image"]), batch, train_cfg["steps"], train_cfg["epochs"])
    spx = train_cfg["steps_per_execution"]
    per_epoch = max(spx, min(out_cfg["log_interval"], total) // spx * spx)
    epochs = -(-total // per_epoch)
    total = epochs * per_epoch
    round_up = lambda n: max(per_epoch, -(-n // per_epoch) * per_epoch)  # noqa: E731
    checkpoint_every = round_up(out_cfg["checkpoint_interval"])
    sample_every = round_up(out_cfg["sample_interval"]) if out_cfg["sample_interval"] else 0
    validate_every = round_up(out_cfg["validation_interval"]) if out_cfg["validation_interval"] else 0

    replicas, chief = placement.replicas, placement.is_chief
    if batch % replicas:
        raise RecipeError(f"recipe field \"train.batch_size\": {batch} does not split evenly over {replicas} devices")
    checkpoints = run_dir / "checkpoints"
    if resume:  # workers that see different checkpoints would build different models: stop first
        found = list_checkpoints(checkpoints)
        placement.check_same(found[-1][0] if found else 0, f"the newest checkpoint in {checkpoints}")
    with placement.scope:
        restored = load_latest(checkpoints, clean=chief) if resume else None
        if restored is not None:
            start, model = restored
            decays_to = decay_total_steps(model)
            if decays_to is not None and decays_to != total:
                raise RecipeError(
                    f"the checkpoints in {checkpoints} decay the learning rates to 0 at step {decays_to} "
                    f"(optimizer.decay_fraction), but this recipe trains to step {total}; resume with the "
                    "run's own train.steps, or start a new run")
            model.steps_per_execution = train_cfg["steps_per_execution"]  # the recipe's (no effect on the math)
            _say(f"resuming {run_dir} from step {start}")
        else:
            keras.utils.set_random_seed(recipe["seed"])  # same recipe, same initial weights
            start, model = 0, build_model(recipe, augment_in_step=where == "step", total_steps=total)
    placement.check_same(start, "the step to resume from")
    phases["model"] = time.perf_counter() - started
    model.step_cache = step_cache
    note = placement.prepare_model(model)
    if start % per_epoch:
        raise RecipeError(f"checkpoint step {start} is not a multiple of the log interval {per_epoch}; "
                          "resume with the recipe the run started with")
    if chief:
        run_dir.mkdir(parents=True, exist_ok=True)
        _write_json(run_dir / "recipe.json", recipe)
    _say(f"backend {backend}, {placement.describe(batch)}, {len(arrays['image'])} training images, "
         f"steps {start} -> {total}, augmentation in {where}")
    if note:
        _say(note)

    augment = model.augment or build_augment(recipe, model.generator.stride, recipe["seed"])
    multi_worker = placement.strategy == "multi_worker"
    if where == "data" and multi_worker:
        train_data = _multi_worker_tf_data(placement, arrays, batch, per_epoch, recipe["seed"], start, total - start,
                                           augment)
    else:  # one process reads whole batches; a JAX multi_worker process its own rows (Keras joins them)
        batches = ImageBatches(arrays, batch, per_epoch, seed=recipe["seed"], start_step=start,
                               shard=placement.worker, num_shards=placement.workers)
        train_data = augmented_tf_dataset(batches, augment, total - start) if where == "data" else batches
    examples = None
    if val_arrays:
        build = validation_examples_cached if recipe["data"]["cache"] else validation_examples
        examples = build(val_arrays, augment, VALIDATION_EXAMPLES, seed=recipe["seed"])
    phases["validation_examples"] = time.perf_counter() - started
    # Keras splits the validation arrays over TensorFlow workers itself (auto-shard DATA: each
    # evaluates its part of every global batch); JAX processes get their rows here.
    validation, validation_batch = examples, batch
    if examples is not None and multi_worker and backend == "jax":
        validation = shard_of_batches(examples, batch, placement.worker, placement.workers)
        validation_batch = batch // placement.workers
        if not len(validation[1]["target"]):
            validation = None  # fewer validation examples than one global batch

    # The other workers run the same (possibly collective) saves into a scratch folder, removed
    # at the end (or when the TemporaryDirectory object goes, if training fails).
    scratch = None if chief else tempfile.TemporaryDirectory(prefix=f"keras_scft_worker{placement.worker}_")
    writes = run_dir if chief else Path(scratch.name)

    guard = StopOnNonFinite(per_epoch, asynchronous=not multi_worker)
    checkpointer = Checkpointer(writes / "checkpoints", checkpoint_every, out_cfg["keep_checkpoints"] if chief else 1,
                                per_epoch, total, guard)
    speed = Throughput(batch, per_epoch, started)
    callbacks = [guard, speed, checkpointer]
    grids = None
    if sample_every and examples is not None and chief:
        grid_class = ChiefSampleGrid if multi_worker else SampleGrid
        grids = grid_class(run_dir / "samples", examples, sample_every, per_epoch)
        callbacks.append(grids)
    if out_cfg["tensorboard"] and chief:
        callbacks.append(ScalarLog(run_dir / "logs"))
    wall = time.perf_counter()
    phases["fit"] = wall - started  # data, model, augmentation and validation set ready
    validated = validation_epochs(epochs, per_epoch, validate_every) if validation is not None else []
    history = model.fit(train_data, epochs=epochs, initial_epoch=start // per_epoch, steps_per_epoch=per_epoch,
                        validation_data=validation if validated else None, validation_batch_size=validation_batch,
                        validation_freq=validated or 1, callbacks=callbacks, shuffle=False,
                        verbose=1 if progress else 2)
    wall = time.perf_counter() - wall
    if chief:
        _append_history(run_dir / "history.json", start, per_epoch, history.history, validated)
    if guard.failure:
        raise NonFiniteLossError(guard.failure)
    if start >= total:
        _say(f"{run_dir} already finished at step {start}")
    final = {k: float(v[-1]) for k, v in history.history.items() if v}
    final.update(steps=total, resumed_from=start, wall_seconds=wall, backend=backend,
                 train_img_per_s_median=sorted(speed.history)[len(speed.history) // 2] if speed.history else None,
                 seconds_to_first_step=speed.first_step_seconds,
                 **{f"seconds_to_{part}": seconds for part, seconds in phases.items()},
                 checkpoint_seconds=checkpointer.seconds, validation_seconds=speed.validation_seconds,
                 sample_seconds=grids.seconds if grids else 0.0,
                 sample_first_seconds=grids.first_seconds if grids else None)
    if step_cache is not None:
        final["train_step_preloaded"] = step_cache.preloaded
    _save_generator(model, writes / "generator.keras")
    if chief:
        _write_json(run_dir / "final_metrics.json", final)
    placement.barrier()  # no worker leaves (JAX: process 0 hosts the coordinator) before all are done
    if scratch is not None:
        scratch.cleanup()
    first = "" if speed.first_step_seconds is None else (
        f" (training began {phases['fit']:.1f} s after the start; the first training call ended at "
        f"{speed.first_step_seconds:.1f} s, compilation included)")
    _say((f"done: {run_dir / 'generator.keras'}" if chief else
          f"done (worker {placement.worker}; the chief wrote {run_dir})") + first)
    return final


def _save_generator(model: ColorizerModel, path: Path) -> None:
    partial = path.with_name(f".{path.name}.partial.keras")
    model.generator.save(partial)
    os.replace(partial, path)


def validation_epochs(epochs: int, per_epoch: int, every: int) -> list[int]:
    """The (1-based) epochs after which Keras validates: every ``every`` steps (a multiple of
    ``per_epoch``) and the last epoch; none when ``every`` is 0."""
    if not every:
        return []
    return sorted({e for e in range(1, epochs + 1) if e * per_epoch % every == 0} | {epochs})


def _append_history(path: Path, start: int, per_epoch: int, history: dict, validated: list[int]) -> None:
    """history.json: {"step": [...], metric: [...]} across resumed segments, one entry per log
    interval; validation metrics (``val_*``) are null where no validation ran."""
    old = json.loads(path.read_text()) if path.is_file() else {"step": []}
    keep = [i for i, s in enumerate(old["step"]) if s <= start]
    merged = {k: [v[i] for i in keep] for k, v in old.items()}
    trained = next((v for k, v in history.items() if not k.startswith("val_")), [])
    steps = [start + (i + 1) * per_epoch for i in range(len(trained))]
    merged["step"] = merged.get("step", []) + steps
    val_steps = {e * per_epoch for e in validated}
    for key, values in history.items():
        values = [float(v) for v in values]
        if key.startswith("val_"):  # one value per validated epoch of this segment
            at = iter(values)
            values = [next(at) if step in val_steps else None for step in steps]
        merged[key] = merged.get(key, [None] * len(keep)) + values
    _write_json(path, merged)
