import json
import os
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest

from keras_scft import ColorizerModel, SelfAugment
from tests.helpers import own_processes, requires_backend, tiny_colorizer

ROOT = Path(__file__).resolve().parent.parent


def _examples(n=4, size=32, seed=0):
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (n, size, size, 3)).astype("uint8")
    example = SelfAugment(feature_stride=16).example_from_numpy(images, rng)
    return ({k: example[k] for k in ("sketch", "reference")},
            {k: example[k] for k in ("target", "correspondence", "valid", "negative")})


@pytest.mark.multi_backend
@pytest.mark.slow
def test_overfits_a_fixed_batch():
    model = tiny_colorizer()
    model.compile(loss_weights={"perceptual": 0, "style": 0},
                  g_optimizer=keras.optimizers.Adam(3e-3, beta_1=0.5), steps_per_execution=5)
    x, y = _examples()
    history = model.fit(x, y, batch_size=4, epochs=30, verbose=0, shuffle=False).history
    assert history["rec"][-1] < 0.6 * history["rec"][0]
    assert history["tr"][-1] < history["tr"][0]
    assert set(history) >= {"loss_g", "loss_d", "rec", "adv", "tr", "d_real", "d_fake", "attn_peak", "attn_hit"}
    # 2 x 2 attention cells at 32 px: weights in [1/4, 1], hits a share
    assert all(0.25 <= v <= 1.0 for v in history["attn_peak"]) and all(0 <= v <= 1 for v in history["attn_hit"])


@pytest.mark.multi_backend
def test_raw_images_are_augmented_inside_the_step():
    model = tiny_colorizer(augment=SelfAugment(feature_stride=16, seed=0))
    model.compile(loss_weights={"perceptual": 0, "style": 0})
    images = np.random.default_rng(0).integers(0, 256, (4, 32, 32, 3)).astype("uint8")
    logs = model.train_on_batch({"image": images}, return_dict=True)
    assert all(np.isfinite(v) for v in logs.values())
    assert int(keras.ops.convert_to_numpy(model.optimizer.iterations)) == 1


@pytest.mark.multi_backend
def test_zero_weight_skips_the_loss_and_zero_adversarial_freezes_d():
    model = tiny_colorizer()
    model.compile(loss_weights={"perceptual": 0, "style": 0, "adversarial": 0, "triplet": 0})
    before = [np.array(w) for w in model.discriminator.get_weights()]
    x, y = _examples()
    logs = model.train_on_batch(x, y, return_dict=True)
    assert "tr" not in logs and "adv" not in logs and "perc" not in logs
    for a, b in zip(before, model.discriminator.get_weights()):
        np.testing.assert_array_equal(a, b)


@pytest.mark.multi_backend
def test_generator_weight_average_is_kept_by_the_step_and_written_at_the_end():
    """g Adam(use_ema=True): each step updates the average; finalize (as fit() does at its
    end) writes it into the generator and leaves D's raw weights."""
    momentum = 0.5
    model = tiny_colorizer()
    model.compile(loss_weights={"perceptual": 0, "style": 0},
                  g_optimizer=keras.optimizers.Adam(1e-2, beta_1=0.5, use_ema=True, ema_momentum=momentum))
    x, y = _examples()
    average = None
    for _ in range(3):
        model.train_on_batch(x, y)
        weights = [keras.ops.convert_to_numpy(v) for v in model.generator.trainable_variables]
        average = weights if average is None else [momentum * a + (1 - momentum) * w
                                                   for a, w in zip(average, weights)]
    d_before = [keras.ops.convert_to_numpy(v) for v in model.discriminator.trainable_variables]
    model.optimizer.finalize_variable_values(model.trainable_weights)
    finalized = [keras.ops.convert_to_numpy(v) for v in model.generator.trainable_variables]
    assert max(np.abs(f - w).max() for f, w in zip(finalized, weights)) > 1e-4  # the average is not the raw weights
    for f, a in zip(finalized, average):
        np.testing.assert_allclose(f, a, rtol=1e-5, atol=1e-6)
    for v, b in zip(model.discriminator.trainable_variables, d_before):
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(v), b)


def test_fit_twice_with_a_generator_weight_average():
    """The end of the first fit writes the average into the generator; on JAX the variables
    then shared the average's buffers and the second fit's donated step failed."""
    model = tiny_colorizer(augment=SelfAugment(feature_stride=16, seed=0))
    model.compile(loss_weights={"perceptual": 0, "style": 0},
                  g_optimizer=keras.optimizers.Adam(1e-3, beta_1=0.5, use_ema=True, ema_momentum=0.5))
    images = np.random.default_rng(0).integers(0, 256, (8, 32, 32, 3)).astype("uint8")
    for _ in range(2):
        history = model.fit({"image": images}, batch_size=4, epochs=1, verbose=0).history
        assert np.isfinite(history["loss_g"][-1])
    assert int(keras.ops.convert_to_numpy(model.optimizer.iterations)) == 4


def _cross_reference_batch(**compile_kwargs):
    """A tiny model compiled with ``compile_kwargs`` (no perceptual, style or adversarial
    loss), the examples (x, y), its training batch as numpy arrays and G's total loss as a
    function of a batch (fixed random outputs and SCFT logits of the batch's size)."""
    model = tiny_colorizer()
    model.compile(loss_weights={"perceptual": 0, "style": 0, "adversarial": 0}, **compile_kwargs)
    x, y = _examples()
    batch = {k: keras.ops.convert_to_numpy(v) for k, v in model.training_batch({**x, **y}).items()}
    rng = np.random.default_rng(1)
    image = rng.uniform(-1, 1, batch["reference"].shape).astype("float32")
    cells = y["valid"].shape[1]
    logits = rng.normal(size=(len(batch["reference"]), cells, cells)).astype("float32")
    return model, x, y, batch, lambda b: float(model.generator_objective(image, logits, b)[0])


def test_cross_reference_share_swaps_references_and_trains_those_examples_adversarially_only():
    model, x, y, batch, loss = _cross_reference_batch(cross_reference=0.5)
    np.testing.assert_array_equal(batch["self_reference"], [0, 0, 1, 1])
    np.testing.assert_array_equal(batch["reference"][:2], x["reference"][1:3])  # the next example's
    np.testing.assert_array_equal(batch["reference"][2:], x["reference"][2:])
    np.testing.assert_array_equal(batch["valid"][:2], 0)
    np.testing.assert_array_equal(batch["valid"][2:], y["valid"][2:])
    # no ground truth for the swapped examples: their targets do not enter G's losses
    other = dict(batch, target=np.concatenate([-batch["target"][:2], batch["target"][2:]]))
    assert loss(other) == pytest.approx(loss(batch))
    other = dict(batch, target=np.concatenate([batch["target"][:2], -batch["target"][2:]]))
    assert loss(other) != pytest.approx(loss(batch))
    logs = model.train_on_batch(x, y, return_dict=True)
    assert all(np.isfinite(v) for v in logs.values())
    with pytest.raises(ValueError, match="cross_reference"):
        tiny_colorizer().compile(cross_reference=1.0)


@pytest.mark.multi_backend
def test_cross_reference_extra_appends_examples_and_keeps_every_reconstruction_example():
    _, x, y, batch, loss = _cross_reference_batch(cross_reference_extra=0.5)
    assert batch["reference"].shape[0] == 6  # 4 + round(0.5 x 4)
    np.testing.assert_array_equal(batch["self_reference"], [1, 1, 1, 1, 0, 0])
    np.testing.assert_array_equal(batch["reference"][:4], x["reference"])  # untouched
    np.testing.assert_array_equal(batch["reference"][4:], x["reference"][1:3])  # the next example's
    np.testing.assert_array_equal(batch["sketch"][4:], x["sketch"][:2])  # copies of the first two
    np.testing.assert_array_equal(batch["valid"][:4], y["valid"])
    np.testing.assert_array_equal(batch["valid"][4:], 0)
    # the appended examples have no ground truth: their targets do not enter G's losses
    other = dict(batch, target=np.concatenate([batch["target"][:4], -batch["target"][4:]]))
    assert loss(other) == pytest.approx(loss(batch))
    other = dict(batch, target=np.concatenate([-batch["target"][:1], batch["target"][1:]]))
    assert loss(other) != pytest.approx(loss(batch))
    model = tiny_colorizer()
    model.compile(loss_weights={"perceptual": 0, "style": 0}, cross_reference_extra=0.5)
    logs = model.train_on_batch(x, y, return_dict=True)
    assert all(np.isfinite(v) for v in logs.values())
    with pytest.raises(ValueError, match="not both"):
        tiny_colorizer().compile(cross_reference=0.5, cross_reference_extra=0.5)
    with pytest.raises(ValueError, match="cross_reference_extra"):
        tiny_colorizer().compile(cross_reference_extra=1.5)


def test_perceptual_weights_need_a_network():
    with pytest.raises(ValueError, match="perceptual network"):
        tiny_colorizer(perceptual=None).compile()
    with pytest.raises(ValueError, match="unknown loss weights"):
        tiny_colorizer().compile(loss_weights={"recon": 1, "perceptual": 0, "style": 0})


@pytest.mark.multi_backend
def test_perceptual_and_style_terms_train_with_a_vgg():
    model = tiny_colorizer(perceptual="random")
    model.compile()
    x, y = _examples()
    logs = model.train_on_batch(x, y, return_dict=True)
    assert logs["perc"] > 0 and logs["style"] > 0


def test_save_load_round_trip_reproduces_outputs_and_optimizer_state(tmp_path):
    model = tiny_colorizer(perceptual="random")
    model.compile(steps_per_execution=2)
    x, y = _examples()
    model.fit(x, y, batch_size=4, epochs=2, verbose=0)
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    np.testing.assert_array_equal(np.asarray(model(x)), np.asarray(loaded(x)))
    assert int(keras.ops.convert_to_numpy(loaded.optimizer.iterations)) == 2
    for a, b in zip(model.optimizer.variables, loaded.optimizer.variables):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert loaded.loss_weights == model.loss_weights
    assert loaded.steps_per_execution == 2  # a resumed run executes as many steps per call
    config = ColorizerModel.from_config(model.get_config()).get_config()
    assert config["generator"]["config"] == model.get_config()["generator"]["config"]


def _saved_arrays(path) -> dict:
    """{group: number of arrays} of a .keras file's weights."""
    import zipfile

    import h5py

    counts = {}

    def count(name, obj):
        if isinstance(obj, h5py.Dataset):
            group = name.rsplit("/", 1)[0]
            counts[group] = counts.get(group, 0) + 1

    with zipfile.ZipFile(path) as archive, archive.open("model.weights.h5") as f, h5py.File(f, "r") as h5:
        h5.visititems(count)
    return counts


def test_optimizer_slots_are_saved_once_and_older_checkpoints_still_load(tmp_path, monkeypatch):
    from keras_scft.optimizers import GANOptimizer

    model = tiny_colorizer()
    model.compile(loss_weights={"perceptual": 0, "style": 0})
    x, y = _examples()
    model.fit(x, y, batch_size=4, epochs=1, verbose=0)
    model.save(tmp_path / "new.keras")
    counts = _saved_arrays(tmp_path / "new.keras")
    inner = len(model.g_optimizer.variables) + len(model.d_optimizer.variables)
    assert counts["optimizer/vars"] == len(model.optimizer.variables) - inner <= 2  # its own counters only
    assert counts["g_optimizer/vars"] == len(model.g_optimizer.variables)  # the Adams' slots, once
    assert counts["d_optimizer/vars"] == len(model.d_optimizer.variables)
    # a checkpoint of the earlier format (every slot also under optimizer/) loads the same state
    with monkeypatch.context() as patch:
        patch.setattr(GANOptimizer, "save_own_variables", keras.optimizers.MultiOptimizer.save_own_variables)
        model.save(tmp_path / "old.keras")
    assert _saved_arrays(tmp_path / "old.keras")["optimizer/vars"] == len(model.optimizer.variables)
    for name in ("new.keras", "old.keras"):
        loaded = keras.saving.load_model(tmp_path / name)
        assert isinstance(loaded.optimizer, GANOptimizer)
        for a, b in zip(model.optimizer.variables, loaded.optimizer.variables):
            np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


@pytest.mark.multi_backend
def test_evaluate_reports_reconstruction_and_psnr():
    model = tiny_colorizer()
    model.compile(loss_weights={"perceptual": 0, "style": 0})
    x, y = _examples()
    scores = model.evaluate(x, y, batch_size=4, verbose=0, return_dict=True)
    assert set(scores) >= {"rec", "psnr"} and 0 < scores["psnr"] < 60


@pytest.mark.multi_backend
def test_mixed_bfloat16_step():
    keras.config.set_dtype_policy("mixed_bfloat16")
    try:
        model = tiny_colorizer(perceptual="random")
        model.compile()
        x, y = _examples()
        logs = model.train_on_batch(x, y, return_dict=True)
    finally:
        keras.config.set_dtype_policy("float32")
    assert all(np.isfinite(v) for v in logs.values())
    assert model.generator.get_layer("sketch_encoder").get_layer("block0_conv").compute_dtype == "bfloat16"


def _distributed(backend: str) -> dict:
    env = {**os.environ, "KERAS_BACKEND": backend, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-m", "tests.distributed_check", backend], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    assert proc.returncode == 0 and lines, proc.stderr[-3000:]
    return json.loads(lines[-1])


@own_processes
@pytest.mark.slow
@requires_backend("tensorflow")
@pytest.mark.parametrize("backend", ["tensorflow", "jax"])
def test_two_devices_match_one_device(backend):
    """MirroredStrategy (2 logical CPUs) and JAX DataParallel (2 host devices): one step on a
    global batch of 4 gives the weights of one device. Adam's first step moves a weight by
    lr * g / (|g| + eps), ~lr whatever |g|, so float noise in a near-zero gradient can move a
    weight by up to 2 lr (4e-4 for D): allow that for at most 1 in 1,000 weights. Gradients
    that were not averaged over the replicas would flip the sign of many more."""
    result = _distributed(backend)
    assert result["replicas"] == 2
    assert result["moved"] > 1e-3  # the step changed the weights
    assert result["max_abs"] <= 4e-4
    assert result["n_off"] <= 1e-3 * result["n_weights"], result
    for key, value in result["single"].items():
        assert result["multi"][key] == pytest.approx(value, rel=1e-4, abs=1e-6)


def _step_on(backend: str, weights: Path, out: Path) -> dict:
    env = {**os.environ, "KERAS_BACKEND": backend, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-m", "tests.backend_step_check", str(weights), str(out)], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    with np.load(out) as result:
        return {k: result[k] for k in result.files}


@own_processes
@pytest.mark.slow
@requires_backend("tensorflow")
def test_tensorflow_and_jax_steps_train_alike(tmp_path):
    """The same weights and batch through one step of each backend's train_step (TF: one
    GradientTape; JAX: jax.vjp of one generator forward): the same losses and, with SGD at
    rate 1, every weight moved by the same gradient to 1% of that tensor's largest move
    (measured: median 0.09%, worst 0.27%: float32 convolutions of oneDNN and XLA differ in
    rounding; a missing or doubled loss term moves weights by tens of percent)."""
    weights = tmp_path / "initial.npz"
    tf_result = _step_on("tensorflow", weights, tmp_path / "tf.npz")
    jax_result = _step_on("jax", weights, tmp_path / "jax.npz")
    with np.load(weights) as stored:
        initial = [stored[f"arr_{i}"] for i in range(len(stored.files))]
    logs = sorted(k for k in tf_result if k.startswith("log_"))
    assert {"log_rec", "log_adv", "log_tr", "log_perc", "log_style", "log_loss_d"} <= set(logs)
    for key in logs:
        assert float(jax_result[key]) == pytest.approx(float(tf_result[key]), rel=1e-4, abs=1e-6), key
    moved = 0
    for i, start in enumerate(initial):
        a, b = tf_result[f"arr_{i}"] - start, jax_result[f"arr_{i}"] - start
        scale = float(np.max(np.abs(a))) if a.size else 0.0
        moved += scale > 0
        assert np.max(np.abs(a - b), initial=0.0) <= 1e-2 * scale + 1e-6, f"weight {i} {start.shape}"
    assert moved > 20  # generator and discriminator weights all moved
