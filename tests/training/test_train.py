import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
import zipfile
from pathlib import Path

import keras
import numpy as np
import pytest

from keras_scft.recipes import RecipeError, load_recipe, validate
from keras_scft.saving import load_model
from keras_scft.training import checkpoints
from keras_scft.training.callbacks import StopOnNonFinite
from keras_scft.training.checkpoints import (BackgroundWriter, checkpoint_path, list_checkpoints, load_latest,
                                             save_checkpoint)
from keras_scft.training.run import train, validation_epochs
from tests.helpers import TINY_WIDTHS, own_processes, requires_backend, tiny_colorizer

ROOT = Path(__file__).resolve().parents[2]


def tiny_recipe(tmp_path, sample_dir, **sections):
    recipe = {
        "data": {"type": "openmoji", "root": str(sample_dir), "image_size": 32, "prepare": False},
        "model": {"widths": list(TINY_WIDTHS), "residual_blocks": 1, "discriminator_widths": [16, 32, 32],
                  "perceptual": None},
        "loss": {"weights": {"perceptual": 0, "style": 0}},
        "train": {"batch_size": 4, "steps": 4, "steps_per_execution": 1},
        "output": {"dir": str(tmp_path / "run"), "log_interval": 2, "checkpoint_interval": 2,
                   "sample_interval": 2, "tensorboard": False},
    }
    for section, values in sections.items():
        recipe[section] = {**recipe.get(section, {}), **values}
    return recipe


@pytest.mark.slow
def test_tiny_recipe_end_to_end(tmp_path, sample_dir, monkeypatch):
    monkeypatch.setenv("KERAS_SCFT_CACHE", str(tmp_path / "cache"))
    recipe = validate(tiny_recipe(tmp_path, sample_dir))
    recipe["name"] = "tiny"
    recipe["optimizer"]["g_ema"] = 0.9
    final = train(recipe, progress=False)
    # the decoded images and the validation examples, for the next run
    entries = (tmp_path / "cache" / "arrays").iterdir()
    images, validation = sorted(entries, key=lambda p: p.name.startswith("validation-"))
    assert sorted(p.name for p in images.iterdir()) == ["image.npy", "sketch.npy"]
    assert sorted(p.name for p in validation.iterdir()) == [
        "x.reference.npy", "x.sketch.npy", "y.correspondence.npy", "y.negative.npy", "y.target.npy", "y.valid.npy"]
    run = tmp_path / "run"
    assert final["steps"] == 4 and np.isfinite(final["loss_g"])
    assert final["checkpoint_seconds"] > 0 and final["validation_seconds"] > 0
    # the set-up's parts, seconds from train()'s start, in their order
    setup = [final[f"seconds_to_{part}"] for part in ("data", "model", "validation_examples", "fit")]
    assert 0 < setup[0] and setup == sorted(setup)
    assert 0 < final["sample_first_seconds"] <= final["sample_seconds"]
    assert final["checkpoint_seconds"] + final["validation_seconds"] + final["sample_seconds"] < final["wall_seconds"]
    assert [s for s, _ in list_checkpoints(run / "checkpoints")] == [2, 4]
    assert sorted(p.name for p in (run / "samples").iterdir()) == ["step-00000002.png", "step-00000004.png"]
    history = json.loads((run / "history.json").read_text())
    assert history["step"] == [2, 4] and len(history["rec"]) == 2
    generator = keras.saving.load_model(run / "generator.keras")
    assert generator.image_size == (32, 32)
    # the saved generator is the weight average; the last checkpoint keeps the raw weights
    _, checkpoint = load_latest(run / "checkpoints")
    assert max(np.abs(a - b).max() for a, b in zip(generator.get_weights(), checkpoint.generator.get_weights())) > 0
    assert json.loads((run / "recipe.json").read_text())["train"]["steps"] == 4


@pytest.mark.slow
@pytest.mark.multi_backend
def test_resume_matches_an_uninterrupted_run(tmp_path, sample_dir):
    def run(name, steps, segments):
        recipe = validate(tiny_recipe(tmp_path / name, sample_dir, augment={"where": "step"}))
        recipe["name"] = name
        recipe["optimizer"]["g_ema"] = 0.5  # the average is part of the checkpoint
        for total in segments:
            recipe["train"]["steps"] = total
            train(recipe, progress=False)
        return keras.saving.load_model(tmp_path / name / "run" / "generator.keras")

    straight = run("straight", 4, [4])
    resumed = run("resumed", 4, [2, 4])
    step, model = load_latest(tmp_path / "resumed" / "run" / "checkpoints")
    assert step == 4 and int(keras.ops.convert_to_numpy(model.optimizer.iterations)) == 4
    for a, b in zip(straight.get_weights(), resumed.get_weights()):
        np.testing.assert_allclose(a, b, atol=1e-5)


@pytest.mark.slow
def test_decaying_learning_rates_resume_exactly_and_only_to_their_total(tmp_path, sample_dir):
    def recipe_in(name):
        recipe = validate(tiny_recipe(tmp_path / name, sample_dir, augment={"where": "step"},
                                      optimizer={"decay_fraction": 0.5}, output={"sample_interval": 0}))
        recipe["name"] = name
        return recipe

    straight = recipe_in("straight")
    train(straight, progress=False)
    step, model = load_latest(tmp_path / "straight" / "run" / "checkpoints")
    assert step == 4
    for optimizer, rate in ((model.g_optimizer, 1e-4), (model.d_optimizer, 2e-4)):
        assert optimizer.get_config()["learning_rate"]["config"] == {
            "learning_rate": rate, "total_steps": 4, "decay_steps": 2}
        assert float(keras.ops.convert_to_numpy(optimizer.learning_rate)) == 0.0  # what a fifth step would use

    # a run stopped after step 2 (its checkpoint alone), resumed: the same weights as the straight run
    resumed = recipe_in("resumed")
    (tmp_path / "resumed" / "run" / "checkpoints").mkdir(parents=True)
    os.link(checkpoint_path(tmp_path / "straight" / "run" / "checkpoints", 2),
            checkpoint_path(tmp_path / "resumed" / "run" / "checkpoints", 2))
    assert train(resumed, progress=False)["resumed_from"] == 2
    for a, b in zip(load_model(tmp_path / "straight" / "run" / "generator.keras").get_weights(),
                    load_model(tmp_path / "resumed" / "run" / "generator.keras").get_weights()):
        np.testing.assert_allclose(a, b, atol=1e-5)

    resumed["train"]["steps"] = 6
    with pytest.raises(RecipeError, match=r"decay the learning rates to 0 at step 4 .* trains to step 6"):
        train(resumed, progress=False)
    assert [s for s, _ in list_checkpoints(tmp_path / "resumed" / "run" / "checkpoints")] == [2, 4]


def test_validation_epochs_are_every_interval_and_the_last():
    assert validation_epochs(epochs=7, per_epoch=100, every=200) == [2, 4, 6, 7]
    assert validation_epochs(epochs=8, per_epoch=100, every=200) == [2, 4, 6, 8]
    assert validation_epochs(epochs=4, per_epoch=50, every=500) == [4]  # interval past the end: the last
    assert validation_epochs(epochs=3, per_epoch=10, every=10) == [1, 2, 3]
    assert validation_epochs(epochs=3, per_epoch=10, every=0) == []


def test_validation_runs_at_its_interval_and_the_last_step(tmp_path, sample_dir):
    """6 steps, log every 2, validate every 4: validation after steps 4 and 6 only (history
    has null at step 2); a run without validation has no val_ metrics at all."""
    recipe = validate(tiny_recipe(tmp_path, sample_dir, train={"steps": 6, "steps_per_execution": 1},
                                  output={"sample_interval": 0, "checkpoint_interval": 6, "validation_interval": 4}))
    recipe["name"] = "validation"
    final = train(recipe, progress=False)
    history = json.loads((tmp_path / "run" / "history.json").read_text())
    assert history["step"] == [2, 4, 6] and len(history["rec"]) == 3
    assert history["val_rec"][0] is None and all(np.isfinite(v) for v in history["val_rec"][1:])
    assert final["val_rec"] == pytest.approx(history["val_rec"][-1])

    recipe["output"] = {**recipe["output"], "dir": str(tmp_path / "none"), "validation_interval": 0}
    final = train(recipe, progress=False)
    assert not any(key.startswith("val_") for key in final) and final["validation_seconds"] == 0
    assert not any(key.startswith("val_") for key in json.loads((tmp_path / "none" / "history.json").read_text()))


def test_a_recipe_with_appended_cross_reference_examples_trains(tmp_path, sample_dir):
    recipe = validate(tiny_recipe(tmp_path, sample_dir, loss={"cross_reference_extra": 0.5},
                                  train={"steps": 2, "steps_per_execution": 1},
                                  output={"sample_interval": 0, "checkpoint_interval": 2}))
    recipe["name"] = "extra"
    final = train(recipe, progress=False)
    assert final["steps"] == 2 and np.isfinite(final["loss_g"])


def test_recipe_errors_name_the_field(tmp_path, sample_dir):
    with pytest.raises(RecipeError, match='"train.batch_sizes" is unknown; allowed fields here: batch_size'):
        validate({"train": {"batch_sizes": 4, "steps": 1}})
    with pytest.raises(RecipeError, match='"train.batch_size": expected an integer, got "16"'):
        validate({"train": {"batch_size": "16", "steps": 1}})
    with pytest.raises(RecipeError, match='"model.norm": "layer" is not allowed; allowed: "instance"'):
        validate({"model": {"norm": "layer"}, "train": {"steps": 1}})
    with pytest.raises(RecipeError, match="data.image_size"):
        validate({"data": {"image_size": 40}, "train": {"steps": 1}})
    with pytest.raises(RecipeError, match='"augment.keep_white": expected true, false or a number in'):
        validate({"augment": {"keep_white": 2}, "train": {"steps": 1}})
    assert validate({"augment": {"keep_white": 0.5}, "train": {"steps": 1}})["augment"]["keep_white"] == 0.5
    with pytest.raises(RecipeError, match='"optimizer.g_ema": 1.0 must be below 1.0'):
        validate({"optimizer": {"g_ema": 1}, "train": {"steps": 1}})
    with pytest.raises(RecipeError, match='"loss.cross_reference_extra": 1.5 is above the maximum 1.0'):
        validate({"loss": {"cross_reference_extra": 1.5}, "train": {"steps": 1}})
    with pytest.raises(RecipeError, match="give one of them"):
        validate({})
    path = tmp_path / "r.json"
    path.write_text(json.dumps({"train": {"steps": 1}}))
    assert load_recipe(path, ["model.widths=[4,4,8,8,8,8,8,8,8,8]", "seed=3"])["model"]["widths"][0] == 4
    with pytest.raises(RecipeError, match="must look like section.field=value"):
        load_recipe(path, ["seed"])
    with pytest.raises(RecipeError, match="does not exist"):
        load_recipe(tmp_path / "missing.json")


def test_missing_path_and_empty_folder_errors(tmp_path, sample_dir):
    missing = validate(tiny_recipe(tmp_path, sample_dir, data={"type": "folder", "root": str(tmp_path / "nope")}))
    with pytest.raises(RecipeError, match=f'"data.root": {tmp_path / "nope"} does not exist'):
        train(missing, progress=False)
    (tmp_path / "empty").mkdir()
    empty = validate(tiny_recipe(tmp_path, sample_dir, data={"type": "folder", "root": str(tmp_path / "empty")}))
    with pytest.raises(RecipeError, match="has no images"):
        train(empty, progress=False)
    unprepared = validate(tiny_recipe(tmp_path, sample_dir, data={"root": str(tmp_path / "empty")}))
    with pytest.raises(RecipeError, match="not a prepared OpenMoji folder"):
        train(unprepared, progress=False)


def test_non_finite_loss_stops_with_the_step_and_term():
    guard = StopOnNonFinite(steps_per_epoch=10)

    class Model:
        stop_training = False

    guard.set_model(Model())
    guard.on_epoch_begin(2)
    guard.on_train_batch_end(4, {"rec": 0.5, "tr": float("nan")})
    assert guard.model.stop_training
    assert guard.failure.startswith("non-finite loss at step 25: tr = nan")


def test_interrupted_checkpoint_write_is_ignored(tmp_path):
    model = tiny_colorizer()
    model.compile(loss_weights={"perceptual": 0, "style": 0})
    folder = tmp_path / "checkpoints"
    save_checkpoint(model, folder, 2, keep=3)
    (folder / ".ckpt-00000004.keras.partial.keras").write_bytes(b"PK\x03\x04 truncated")
    (folder / "ckpt-00000006.keras").write_bytes(b"not a zip")  # e.g. a damaged disk copy
    with pytest.warns(UserWarning, match="does not load"):
        step, _ = load_latest(folder)
    assert step == 2
    assert not (folder / ".ckpt-00000004.keras.partial.keras").exists()


def test_a_resumed_run_executes_the_recipes_steps_per_execution(tmp_path, sample_dir, monkeypatch):
    from keras_scft.model import ColorizerModel

    seen, fit = [], ColorizerModel.fit

    def recording_fit(self, *args, **kwargs):
        seen.append(self.steps_per_execution)
        return fit(self, *args, **kwargs)

    monkeypatch.setattr(ColorizerModel, "fit", recording_fit)
    recipe = validate(tiny_recipe(tmp_path, sample_dir, train={"steps": 2, "steps_per_execution": 2},
                                  output={"sample_interval": 0}))
    recipe["name"] = "spe"
    train(recipe, progress=False)
    recipe["train"].update(steps=4, steps_per_execution=1)  # changed on resume: no effect on the math
    train(recipe, progress=False)
    assert seen == [2, 1]


def test_background_checkpoints_are_the_state_at_save(tmp_path):
    model = tiny_colorizer()
    model.compile(loss_weights={"perceptual": 0, "style": 0})
    before = model.generator.get_weights()
    folder = tmp_path / "checkpoints"
    writer = BackgroundWriter()
    writer.save(model, folder, 2, keep=2)
    model.generator.set_weights([w + 1 for w in before])  # training goes on while it writes
    writer.save(model, folder, 4, keep=2)
    model.generator.set_weights([w + 2 for w in before])
    writer.save(model, folder, 6, keep=2)
    writer.wait()
    found = list_checkpoints(folder)
    assert [s for s, _ in found] == [4, 6]  # keep=2 pruned step 2
    assert not list(folder.glob(".*partial*"))
    for (_, path), offset in zip(found, (1, 2)):
        for a, b in zip(load_model(path).generator.get_weights(), before):
            np.testing.assert_array_equal(a, b + offset)


def test_a_failed_background_write_is_raised(tmp_path):
    blocker = tmp_path / "not_a_folder"
    blocker.write_text("a file where the checkpoint folder should be")
    writer = BackgroundWriter()
    writer.save(tiny_colorizer(), blocker, 2, keep=1)
    with pytest.raises(FileExistsError):
        writer.wait()
    writer.wait()  # raised once; the writer is usable again
    assert blocker.read_text().startswith("a file")


def _training_colorizer():
    """A tiny colorizer whose checkpoints hold every kind of state (augmentation seed,
    spectral-norm vectors, Adam slots and counters, a weight average, metrics), and a
    function that trains a model like it one step on raw images."""
    from keras_scft import SelfAugment

    model = tiny_colorizer(augment=SelfAugment(feature_stride=16, seed=0))
    model.compile(loss_weights={"perceptual": 0, "style": 0},
                  g_optimizer=keras.optimizers.Adam(1e-3, beta_1=0.5, use_ema=True, ema_momentum=0.5))
    images = np.random.default_rng(0).integers(0, 256, (4, 32, 32, 3)).astype("uint8")
    return model, lambda trained=model: trained.train_on_batch({"image": images}, return_dict=True)


def _archive(path) -> tuple[bytes, dict]:
    """A .keras file's config.json and its weights as {dataset path: array}."""
    import h5py

    weights = {}

    def read(name, obj):
        if isinstance(obj, h5py.Dataset):
            weights[name] = obj[()]

    with zipfile.ZipFile(path) as archive:
        config = archive.read("config.json")
        with archive.open("model.weights.h5") as f, h5py.File(f, "r") as h5:
            h5.visititems(read)
    return config, weights


# The JAX pass runs the float32 case only: the policy is handled alike on every backend.
@pytest.mark.multi_backend
@pytest.mark.parametrize("policy", ["float32", pytest.param("mixed_bfloat16", marks=requires_backend("tensorflow"))])
def test_a_twin_written_checkpoint_is_the_direct_save_of_that_moment(tmp_path, policy):
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(policy)
    try:
        model, train_step = _training_colorizer()
        writer = BackgroundWriter()
        direct = []
        for step in (1, 2):  # the first builds the twin, the second reuses it
            train_step()  # every kind of state moves on
            direct.append(save_checkpoint(model, tmp_path / "direct", step, keep=2))
            writer.save(model, tmp_path / "twin", step, keep=2)
        train_step()  # training goes on while it writes
        writer.wait()
    finally:
        keras.config.set_dtype_policy(previous)
    for step, path in zip((1, 2), direct):
        config, weights = _archive(checkpoint_path(tmp_path / "twin", step))
        expected_config, expected = _archive(path)
        assert config == expected_config
        assert weights.keys() == expected.keys() and len(weights) > 400
        for name, array in expected.items():
            assert weights[name].dtype == array.dtype, name
            np.testing.assert_array_equal(weights[name], array, err_msg=f"step {step}: {name}")


def test_training_resumes_from_a_twin_written_checkpoint(tmp_path):
    model, train_step = _training_colorizer()
    writer = BackgroundWriter()
    writer.save(model, tmp_path, 0, keep=2)
    train_step()
    writer.save(model, tmp_path, 1, keep=2)
    writer.wait()
    resumed = load_model(checkpoint_path(tmp_path, 1))
    logs = train_step(resumed)
    assert all(np.isfinite(v) for v in logs.values())
    assert int(keras.ops.convert_to_numpy(resumed.optimizer.iterations)) == 2


def test_a_checkpoint_from_before_the_attention_metrics_resumes(tmp_path, monkeypatch):
    """Checkpoints written before attn_peak/attn_hit joined the training metrics have two
    metric trackers fewer: they load (metric states restart every epoch anyway), train, and
    log the new metrics."""
    import keras_scft.model

    monkeypatch.setattr(keras_scft.model, "TRAIN_METRICS", keras_scft.model.TRAIN_METRICS[:-2])
    monkeypatch.setattr(keras_scft.model, "attention_statistics", lambda *args: {})
    old, train_step = _training_colorizer()
    train_step()
    save_checkpoint(old, tmp_path, 1, keep=1)
    monkeypatch.undo()
    _, resumed = load_latest(tmp_path)
    assert {m.name for m in resumed.metrics} >= {"attn_peak", "attn_hit"}
    for a, b in zip(old.generator.get_weights(), resumed.generator.get_weights()):
        np.testing.assert_array_equal(a, b)
    logs = train_step(resumed)
    assert 0 < logs["attn_peak"] <= 1 and 0 <= logs["attn_hit"] <= 1
    assert int(keras.ops.convert_to_numpy(resumed.optimizer.iterations)) == 2


@pytest.mark.multi_backend
def test_checkpoints_are_serialized_on_the_writer_thread_from_a_twin_like_the_model(tmp_path, monkeypatch):
    calls, serialize = [], checkpoints.serialize_model

    def policies(model):
        return [layer.dtype_policy.name for layer in model.generator.layers + model.discriminator.layers]

    def recording(model):
        calls.append((threading.current_thread(), policies(model)))
        return serialize(model)

    monkeypatch.setattr(checkpoints, "serialize_model", recording)
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_bfloat16")  # per thread in Keras: the writer's must follow
    try:
        model = tiny_colorizer()
        model.compile(loss_weights={"perceptual": 0, "style": 0})
        numpy_state, python_state = np.random.get_state()[1], random.getstate()
        writer = BackgroundWriter()
        for step in (1, 2, 3):
            writer.save(model, tmp_path, step, keep=1, last=step == 3)  # the last through the twin too
        writer.wait()
        only = BackgroundWriter()
        only.save(model, tmp_path, 4, keep=1, last=True)  # a run's only checkpoint: no twin for it
        only.wait()
    finally:
        keras.config.set_dtype_policy(previous)
    caller = threading.current_thread()
    assert [thread is caller for thread, _ in calls] == [False, False, False, True]
    assert writer._twin is not None and only._twin is None
    assert [s for s, _ in list_checkpoints(tmp_path)] == [4]
    assert "mixed_bfloat16" in policies(model) and all(seen == policies(model) for _, seen in calls)
    # building the twin drew its (then overwritten) initial weights from generators of its own
    assert np.array_equal(np.random.get_state()[1], numpy_state) and random.getstate() == python_state


def test_a_twin_whose_variables_do_not_pair_with_the_models_is_an_error(tmp_path, monkeypatch):
    model = tiny_colorizer()
    model.compile(loss_weights={"perceptual": 0, "style": 0})
    state_variables = checkpoints.state_variables
    # the twin lists one variable fewer: its pairs are shifted by one
    monkeypatch.setattr(checkpoints, "state_variables", lambda m: state_variables(m)[m is not model:])
    writer = BackgroundWriter()
    writer.save(model, tmp_path, 1, keep=1)
    first, second = state_variables(model)[:2]
    with pytest.raises(ValueError, match=rf"state variable 0 is {first.path} .* the twin's .* is {second.path} "):
        writer.wait()
    assert list_checkpoints(tmp_path) == []  # nothing half-written


@own_processes
@pytest.mark.slow
def test_sigkill_during_training_resumes_from_a_complete_checkpoint(tmp_path, sample_dir):
    recipe = tiny_recipe(tmp_path, sample_dir, train={"steps": 400, "steps_per_execution": 1},
                         output={"dir": str(tmp_path / "run"), "log_interval": 1, "checkpoint_interval": 1,
                                 "sample_interval": 0, "tensorboard": False, "keep_checkpoints": 2})
    path = tmp_path / "recipe.json"
    path.write_text(json.dumps(recipe))
    env = {**os.environ, "PYTHONPATH": str(ROOT), "KERAS_SCFT_QUIET": "1"}
    command = [sys.executable, str(ROOT / "tools" / "train.py"), str(path), "--quiet"]
    proc = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    folder = tmp_path / "run" / "checkpoints"
    caught_partial = False
    deadline = time.time() + 240
    try:  # kill while a checkpoint is being written if we can catch one, else after a few
        while time.time() < deadline and proc.poll() is None:
            if folder.is_dir():
                if any(p.name.endswith(".partial.keras") for p in folder.iterdir()) and list_checkpoints(folder):
                    caught_partial = True
                    break
                if len(list_checkpoints(folder)) >= 2 and any(s >= 6 for s, _ in list_checkpoints(folder)):
                    break
            time.sleep(0.005)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    complete = [s for s, _ in list_checkpoints(folder)]
    assert complete, "no checkpoint was written before the kill"
    step, model = load_latest(folder)  # never a checkpoint that loads wrongly
    assert step == max(complete) and int(keras.ops.convert_to_numpy(model.optimizer.iterations)) == step
    assert not any(p.name.endswith(".partial.keras") for p in folder.iterdir())
    print(f"killed at step {step}, during a write: {caught_partial}")
