"""Training on several workers: 2 local worker processes on 127.0.0.1 against one process.

The slow tests launch ``tools/train.py`` twice (one process per worker, as on two machines)
with ``distribution.strategy = "multi_worker"``: TensorFlow workers get ``TF_CONFIG``, JAX
processes ``--coordinator/--num-processes/--process-id``. Both run in the TensorFlow test
pass; the JAX workers are subprocesses with ``KERAS_BACKEND=jax``.
"""

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import keras
import numpy as np
import pytest

from keras_scft.data.pipeline import ImageBatches, load_arrays, shard_of_batches, shard_rows
from keras_scft.data.sources import OpenMojiSource
from keras_scft.distribute import DistributionError, ProcessSettings, read_tf_config
from keras_scft.recipes import RecipeError, validate
from keras_scft.training.checkpoints import checkpoint_path, list_checkpoints, load_latest
from keras_scft.training.run import train
from tests.helpers import own_processes, requires_backend
from tests.training.test_train import tiny_recipe

ROOT = Path(__file__).resolve().parents[2]
WORKER_TIMEOUT = 300  # seconds for one launch; on a 2-core machine each takes under 90 s


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_processes(jobs: list[tuple[list[str], dict, Path]]) -> list[tuple[subprocess.Popen, Path]]:
    """Start every (command, environment, log file) at once."""
    started = []
    try:
        for command, env, log in jobs:
            with open(log, "w") as out:
                proc = subprocess.Popen(command, env=env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
            started.append((proc, log))
    except BaseException:
        stop_processes(started)
        raise
    return started


def wait_processes(started, timeout: float = WORKER_TIMEOUT) -> list[str]:
    """Wait for all; each must exit 0. Returns their logs."""
    deadline = time.monotonic() + timeout
    for proc, _ in started:
        proc.wait(timeout=max(1.0, deadline - time.monotonic()))
    logs = [log.read_text() for _, log in started]
    for (proc, path), log in zip(started, logs):
        assert proc.returncode == 0, f"{path.name}: exit code {proc.returncode}\n{log[-4000:]}"
    return logs


def stop_processes(started) -> None:
    """Kill whatever still runs (after a failure or a timeout)."""
    for proc, _ in started:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def run_processes(jobs, timeout: float = WORKER_TIMEOUT) -> list[str]:
    started = start_processes(jobs)
    try:
        return wait_processes(started, timeout)
    finally:
        stop_processes(started)


def worker_env(backend: str, tmp: Path, **extra) -> dict:
    tmp.mkdir(parents=True, exist_ok=True)
    return {**os.environ, "KERAS_BACKEND": backend, "PYTHONPATH": str(ROOT), "KERAS_SCFT_QUIET": "",
            "TMPDIR": str(tmp), **extra}


def train_command(recipe: dict, path: Path, *flags: str) -> list[str]:
    path.write_text(json.dumps(recipe))
    return [sys.executable, str(ROOT / "tools" / "train.py"), str(path), "--quiet", *flags]


def weight_difference(a: keras.Model, b: keras.Model) -> float:
    return max(float(np.max(np.abs(np.asarray(x, np.float64) - y))) if x.size else 0.0
               for x, y in zip(a.get_weights(), b.get_weights()))


def weights_off(a: keras.Model, b: keras.Model, tol: float = 1e-5) -> tuple[int, int]:
    """(number of weights of ``a`` and ``b`` that differ by more than ``tol``, number of weights)."""
    pairs = list(zip(a.get_weights(), b.get_weights()))
    return (sum(int(np.sum(np.abs(np.asarray(x, np.float64) - y) > tol)) for x, y in pairs),
            sum(x.size for x, _ in pairs))


def check_run_folder(run: Path, steps: list[int]) -> keras.Model:
    """The chief wrote the whole run folder; its newest checkpoint loads; returns the model."""
    assert [s for s, _ in list_checkpoints(run / "checkpoints")] == steps
    assert not [p for p in (run / "checkpoints").iterdir() if "partial" in p.name]
    assert sorted(p.name for p in (run / "samples").iterdir()) == [f"step-{s:08d}.png" for s in steps]
    assert json.loads((run / "history.json").read_text())["step"] == steps
    assert (run / "generator.keras").is_file() and (run / "final_metrics.json").is_file()
    step, model = load_latest(run / "checkpoints")
    assert step == steps[-1] and int(keras.ops.convert_to_numpy(model.optimizer.iterations)) == step
    earlier = keras.saving.load_model(checkpoint_path(run / "checkpoints", steps[-2]))
    assert weight_difference(model, earlier) > 1e-4  # the last steps trained
    return model


@own_processes
@pytest.mark.slow
@requires_backend("tensorflow")
def test_tensorflow_two_workers_match_one_process_and_resume(tmp_path, sample_dir):
    """MultiWorkerMirroredStrategy, 2 workers x batch 2, trained 2 steps, restarted, 2 more:
    every worker resumes from the chief's checkpoint and the weights equal one process
    trained 4 steps on batch 4. As in test_two_devices_match_one_device: the two sum the
    replicas' gradients in different orders, and Adam turns float noise in a near-zero
    gradient into a move of up to ~2 lr per step (CI saw 2.7e-4 once, another run 2e-6), so
    after 2 steps at most 1 in 1,000 weights may differ by more than 1e-5, by at most 1e-3
    (2 steps x 2 x the D's 2e-4, rounded up); gradients not averaged over the workers would
    move far more. Step 4: see the bounds below.
    The workers ask for 2 steps per execution (they run 1: see distribute.py)."""
    multi = tiny_recipe(tmp_path / "multi", sample_dir, distribution={"strategy": "multi_worker"},
                        train={"steps_per_execution": 2})
    run = tmp_path / "multi" / "run"
    tmps = [tmp_path / f"tmp{i}" for i in range(2)]

    def launch(steps: int):
        ports = [free_port(), free_port()]
        recipe = {**multi, "train": {**multi["train"], "steps": steps}}
        jobs = []
        for i in range(2):
            config = {"cluster": {"worker": [f"127.0.0.1:{p}" for p in ports]}, "task": {"type": "worker", "index": i}}
            env = worker_env("tensorflow", tmps[i], TF_CONFIG=json.dumps(config))
            jobs.append((train_command(recipe, tmp_path / f"recipe{steps}.json"), env, tmp_path / f"w{i}-{steps}.log"))
        return jobs

    started_at = time.monotonic()
    workers = start_processes(launch(2))
    try:  # meanwhile, the single-process run: batch 4, 4 steps
        single = validate(tiny_recipe(tmp_path / "single", sample_dir))
        single["name"] = "single"
        train(single, progress=False)
        logs = wait_processes(workers)
    finally:
        stop_processes(workers)
    assert "this is worker 0 (chief)" in logs[0] and "this is worker 1 (non-chief" in logs[1]
    assert "steps_per_execution is 1 here" in logs[0]
    logs = run_processes(launch(4))
    print(f"two segments of 2 workers: {time.monotonic() - started_at:.0f} s")
    assert all("from step 2" in log for log in logs), "a worker did not resume from the chief's checkpoint"

    model = check_run_folder(run, [2, 4])
    assert all(not any(t.iterdir()) for t in tmps), "a worker left its scratch folder behind"
    # After the first segment (2 steps) at most 1 in 1,000 weights differ by more than 1e-5.
    # Those few (up to ~2 lr each) then move the gradients of the many weights whose gradient
    # is small, and Adam's normalized updates turn that into more weights off by step 4
    # (2026-11-28, this repo's CPU, since D's convs run as tap sums / on blocks: 175 -> 160,676
    # of 1.1 M weights, max 2.7e-4; the step-4 training losses equal to 2e-5, val_rec to
    # 1.7e-4), so step 4 is bounded loosely and its losses closely, as in the JAX test below.
    single_checkpoints = tmp_path / "single" / "run" / "checkpoints"
    first = [keras.saving.load_model(checkpoint_path(folder, 2)) for folder in (run / "checkpoints", single_checkpoints)]
    off, total = weights_off(*first)
    assert weight_difference(*first) <= 1e-3 and off <= 1e-3 * total, (weight_difference(*first), off)
    _, reference = load_latest(single_checkpoints)
    off, total = weights_off(model, reference)
    assert weight_difference(model, reference) <= 2e-3 and off <= 0.3 * total, (weight_difference(model, reference), off)
    ours = json.loads((run / "final_metrics.json").read_text())
    theirs = json.loads((tmp_path / "single" / "run" / "final_metrics.json").read_text())
    for key in ("loss_g", "loss_d", "rec", "tr", "val_rec"):  # (val_rec, of the step-4 weights: 1.7e-4 apart)
        assert ours[key] == pytest.approx(theirs[key], rel=1e-3), key


@own_processes
@pytest.mark.slow
@requires_backend("tensorflow")
def test_jax_two_processes_match_one_process(tmp_path, sample_dir):
    """jax.distributed + DataParallel, 2 processes x batch 2 (each feeding its own rows), 4
    steps: the weights equal one process on batch 4 over the same 2 (host) devices.

    The one-process run uses 2 devices so both runs compile the same partitioned program; a
    1-device run differs by float noise that Adam (beta_1 = 0.5) amplifies to ~lr after a few
    steps (test_two_devices_match_one_device compares 1 vs 2 devices on one step)."""
    no_cache = {"compile_cache": "off"}  # nothing to reuse: each run compiles its program once
    multi, single = [tiny_recipe(tmp_path / name, sample_dir, distribution={"strategy": strategy}, output=no_cache,
                                 train={"steps_per_execution": 2})
                     for name, strategy in (("multi", "multi_worker"), ("single", "data_parallel"))]
    coordinator = f"127.0.0.1:{free_port()}"
    tmps = [tmp_path / f"tmp{i}" for i in range(2)]
    # the coordinator listens on 127.0.0.1 only (JAX's default, [::], needs IPv6)
    env = {"JAX_COORDINATOR_BIND_ADDRESS": coordinator}
    jobs = [(train_command(multi, tmp_path / "multi.json", "--coordinator", coordinator, "--num-processes", "2",
                           "--process-id", str(i)), worker_env("jax", tmps[i], **env), tmp_path / f"w{i}.log")
            for i in range(2)]
    two_devices = "--xla_force_host_platform_device_count=2"
    jobs.append((train_command(single, tmp_path / "single.json"), worker_env("jax", tmp_path / "tmp_single",
                 XLA_FLAGS=two_devices), tmp_path / "single.log"))
    started = time.monotonic()
    logs = run_processes(jobs)
    print(f"2 JAX processes + the 1-process run: {time.monotonic() - started:.0f} s")
    assert "2 worker(s) x 1 device(s)" in logs[0] and "this is worker 1 (non-chief" in logs[1]

    model = check_run_folder(tmp_path / "multi" / "run", [2, 4])
    assert all(not any(t.iterdir()) for t in tmps), "a worker left its scratch folder behind"
    _, reference = load_latest(tmp_path / "single" / "run" / "checkpoints")
    # Adam's first updates are ~lr * sign(gradient): where a gradient is ~0, float noise of the
    # two programs flips them (under 0.1% of the weights on earlier machines, 3% on a 2-core
    # machine of 2026-11-28 whose losses agreed to 1e-4). So the weights are bounded loosely,
    # and the losses, which a wrong data split or reduction would change at the first digits,
    # closely.
    off, total = weights_off(model, reference)
    assert weight_difference(model, reference) <= 2e-3 and off <= 0.1 * total, (weight_difference(model, reference), off)
    ours, theirs = (json.loads((tmp_path / name / "run" / "final_metrics.json").read_text()) for name in ("multi", "single"))
    for key in ("loss_g", "loss_d", "rec", "tr", "val_rec"):
        assert ours[key] == pytest.approx(theirs[key], rel=1e-3), key


# ------------------------------------------------------------------ fast checks of the pieces


def test_batch_shards_partition_the_global_batch(sample_dir):
    arrays = load_arrays(OpenMojiSource(sample_dir, "train"), 32, progress=False)
    whole = ImageBatches(arrays, 4, 2, seed=3).step_batch(5)
    parts = [ImageBatches(arrays, 4, 2, seed=3, shard=i, num_shards=2).step_batch(5) for i in range(2)]
    for key in whole:
        np.testing.assert_array_equal(whole[key], np.concatenate([p[key] for p in parts]))
    assert shard_rows(8, 3, 4) == slice(6, 8)
    with pytest.raises(ValueError, match="does not split evenly into 3 shards"):
        shard_rows(8, 0, 3)
    rows = np.arange(10)
    # global batches of 4: [0 1 2 3] [4 5 6 7], the last 2 rows are no complete batch
    assert shard_of_batches({"x": rows}, 4, 1, 2)["x"].tolist() == [2, 3, 6, 7]


@requires_backend("tensorflow")
def test_sharded_pipeline_gives_the_same_examples(sample_dir):
    """Two shards of the tf.data pipeline together give the one-pipeline batch (floats to
    kernel noise: TF's batched ops round differently for 2 and 4 rows), and a pipeline
    started at step s gives exactly the batch of step s."""
    from keras_scft.augment.example import SelfAugment
    from keras_scft.data.pipeline import augmented_tf_dataset

    arrays = load_arrays(OpenMojiSource(sample_dir, "train"), 32, progress=False)
    augment = SelfAugment(feature_stride=16, given_sketch_prob=0.5, seed=0)
    one = list(augmented_tf_dataset(ImageBatches(arrays, 4, 2, seed=0, start_step=3), augment, 2))
    shards = [ImageBatches(arrays, 4, 2, seed=0, start_step=3, shard=i, num_shards=2) for i in range(2)]
    two = list(augmented_tf_dataset(shards, augment, 2))
    assert len(two) == 2 * len(one)
    for step, (x, y) in enumerate(one):
        for key, value in {**x, **y}.items():
            joined = np.concatenate([{**two[2 * step + i][0], **two[2 * step + i][1]}[key] for i in range(2)])
            np.testing.assert_allclose(value, joined, atol=1e-4, err_msg=key)
    later = next(iter(augmented_tf_dataset(ImageBatches(arrays, 4, 2, seed=0, start_step=4), augment, 1)))
    for a, b in zip(keras.tree.flatten(later), keras.tree.flatten(one[1])):
        np.testing.assert_array_equal(a, b)
    assert not list(augmented_tf_dataset(ImageBatches(arrays, 4, 2, start_step=8), augment, 0))  # a finished run


def test_tf_config_errors_say_what_to_set():
    assert read_tf_config('{"cluster": {"worker": ["a:1", "b:2"]}, "task": {"type": "worker", "index": 1}}') == (1, 2)
    assert read_tf_config('{"cluster": {"chief": ["a:1"], "worker": ["b:2"]}, "task": {"type": "chief"}}') == (0, 2)
    assert read_tf_config('{"cluster": {"chief": ["a:1"], "worker": ["b:2"]}, "task": {"type": "worker"}}') == (1, 2)
    with pytest.raises(DistributionError, match="needs the TF_CONFIG environment variable"):
        read_tf_config(None)
    with pytest.raises(DistributionError, match="not valid JSON"):
        read_tf_config("{cluster")
    with pytest.raises(DistributionError, match='task index 2 is out of range for the 2 "worker"'):
        read_tf_config('{"cluster": {"worker": ["a:1", "b:2"]}, "task": {"type": "worker", "index": 2}}')
    with pytest.raises(DistributionError, match=r"jobs \['ps'\] are not supported"):
        read_tf_config('{"cluster": {"worker": ["a:1"], "ps": ["b:2"]}, "task": {"type": "worker", "index": 0}}')
    with pytest.raises(DistributionError, match='"host:port" addresses'):
        read_tf_config('{"cluster": {"worker": ["a"]}, "task": {"type": "worker", "index": 0}}')


@requires_backend("tensorflow")
def test_multi_worker_setting_errors(tmp_path, sample_dir, monkeypatch):
    with pytest.raises(RecipeError, match='"distribution.devices" cannot be used with strategy "multi_worker"'):
        validate(tiny_recipe(tmp_path, sample_dir, distribution={"strategy": "multi_worker", "devices": ["/gpu:0"]}))
    with pytest.raises(RecipeError, match="--coordinator / --num-processes / --process-id"):
        train(validate(tiny_recipe(tmp_path, sample_dir)), processes=ProcessSettings(process_id=1))
    multi = tiny_recipe(tmp_path, sample_dir, distribution={"strategy": "multi_worker"})
    monkeypatch.delenv("TF_CONFIG", raising=False)
    with pytest.raises(DistributionError, match="needs the TF_CONFIG environment variable"):
        train(validate(multi))
    with pytest.raises(RecipeError, match='"step" is not supported with distribution.strategy "multi_worker"'):
        train(validate({**multi, "augment": {"where": "step"}}))
    assert not (tmp_path / "run").exists()  # nothing was written


@pytest.mark.multi_backend
@requires_backend("jax")
def test_jax_process_settings_errors():
    import jax

    from keras_scft.distribute import distribute

    with pytest.raises(DistributionError, match="--process-id 2 is out of range for 2 processes"):
        distribute("multi_worker", processes=ProcessSettings("127.0.0.1:1", 2, 2))
    jax.devices()  # JAX is running now: too late to join a multi-process job
    with pytest.raises(DistributionError, match="before JAX computes anything"):
        distribute("multi_worker", processes=ProcessSettings(f"127.0.0.1:{free_port()}", 2, 0))
    # a fresh process without any cluster settings
    code = ("from keras_scft.distribute import ProcessSettings, distribute\n"
            "distribute('multi_worker', processes=ProcessSettings())")
    proc = subprocess.run([sys.executable, "-c", code], env={**os.environ, "KERAS_BACKEND": "jax", "PYTHONPATH": str(ROOT)},
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0 and "DistributionError" in proc.stderr and "--coordinator HOST:PORT" in proc.stderr, \
        proc.stderr[-2000:]
