"""Pick the multi-device engine of the running backend.

* ``mirrored``: ``tf.distribute.MirroredStrategy`` over the listed (default: all visible)
  GPUs, TensorFlow backend. Build and compile the model inside the returned scope.
* ``data_parallel``: ``keras.distribution.DataParallel`` over the listed (default: all)
  devices, JAX backend; set globally, the scope is a no-op.
* ``multi_worker``: several processes, usually one per machine, each with its devices.

  - TensorFlow: ``tf.distribute.MultiWorkerMirroredStrategy``. The cluster comes from the
    standard ``TF_CONFIG`` environment variable (``{"cluster": {"worker": [host:port, ...]},
    "task": {"type": "worker", "index": i}}``; a ``"chief"`` job is allowed too).
  - JAX: ``jax.distributed.initialize`` (through ``keras.distribution.initialize``), then
    ``keras.distribution.DataParallel`` over the devices of all processes. Coordinator
    address, process count and process id come from :class:`ProcessSettings` (the
    ``--coordinator/--num-processes/--process-id`` flags), else from
    ``KERAS_DISTRIBUTION_JOB_ADDRESSES`` / ``KERAS_DISTRIBUTION_NUM_PROCESSES`` /
    ``KERAS_DISTRIBUTION_PROCESS_ID`` (or ``JAX_COORDINATOR_ADDRESS``), else JAX finds them
    itself under Slurm, Open MPI and the other launchers it detects.

  Worker 0 is the chief (TensorFlow: the ``"chief"`` task if there is one): it writes the
  run folder. Each worker feeds its own slice of every global batch (see
  :mod:`keras_scft.data.pipeline`).
* ``none``: one device.
"""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import dataclass, field
from typing import Any

import keras

STRATEGIES = ("none", "mirrored", "data_parallel", "multi_worker")


class DistributionError(ValueError):
    """A strategy cannot run here: wrong backend, missing or inconsistent cluster settings."""


@dataclass(frozen=True)
class ProcessSettings:
    """Where this process sits in a multi-process JAX job; None: from the environment."""

    coordinator: str | None = None
    num_processes: int | None = None
    process_id: int | None = None


@dataclass
class Placement:
    """How a run is spread: ``replicas`` devices split the global batch, over ``workers``
    processes of which this one is number ``worker``. Build the model inside ``scope``."""

    strategy: str
    engine: str
    replicas: int
    workers: int = 1
    worker: int = 0
    scope: Any = field(default_factory=contextlib.nullcontext)
    tf_strategy: Any = None

    @property
    def is_chief(self) -> bool:
        """The chief writes the run folder; the other workers write nothing there."""
        return self.worker == 0

    @property
    def local_replicas(self) -> int:
        return self.replicas // self.workers

    def describe(self, batch_size: int) -> str:
        """One line for the start of a run: engine, workers, devices, batch split."""
        if self.strategy != "multi_worker":
            return (f"strategy {self.strategy}, {self.replicas} device(s), global batch {batch_size} "
                    f"({batch_size // self.replicas} per device)")
        role = "chief" if self.is_chief else "non-chief, writes no files"
        return (f"strategy multi_worker ({self.engine}), {self.workers} worker(s) x {self.local_replicas} "
                f"device(s) = {self.replicas} device(s), this is worker {self.worker} ({role}), global batch "
                f"{batch_size} ({batch_size // self.workers} per worker, {batch_size // self.replicas} per device)")

    def gather(self, value: int) -> list[int]:
        """``value`` of every worker, in worker order (a collective: all workers must call it)."""
        if self.workers == 1:
            return [int(value)]
        if self.tf_strategy is not None:
            import tensorflow as tf

            per_replica = self.tf_strategy.experimental_distribute_values_from_function(
                lambda context: tf.constant([value], tf.int64))
            gathered = self.tf_strategy.gather(per_replica, axis=0).numpy()
            return [int(v) for v in gathered[:: self.local_replicas]]
        import numpy as np
        from jax.experimental import multihost_utils

        return [int(v) for v in np.asarray(multihost_utils.process_allgather(np.int64(value)))]

    def barrier(self) -> None:
        """Wait until every worker gets here."""
        self.gather(0)

    def check_same(self, value: int, what: str) -> None:
        """Raise on every worker unless all workers hold the same ``value``."""
        values = self.gather(value)
        if len(set(values)) > 1:
            raise DistributionError(f"the workers disagree on {what}: {values} (worker order); every worker "
                                    "must see the same run folder (output.dir on a shared file system)")

    def prepare_model(self, model: keras.Model) -> str:
        """Adapt a built, compiled model to this placement before ``fit`` (see
        :func:`_work_around_keras_multi_worker`); returns a note for the user, or ""."""
        if self.strategy == "multi_worker" and self.tf_strategy is not None:
            return _work_around_keras_multi_worker(model)
        return ""


def distribute(strategy: str = "none", devices=None, processes: ProcessSettings | None = None) -> Placement:
    """Set up ``strategy`` on the running backend and return its :class:`Placement`.

    For ``multi_worker`` this must run before the backend computes anything (TensorFlow
    configures its collective ops, JAX its distributed runtime, at program start).
    """
    backend = keras.backend.backend()
    if strategy == "none":
        return Placement("none", "one device", 1)
    if strategy == "mirrored":
        if backend != "tensorflow":
            raise DistributionError(f'distribution strategy "mirrored" needs the tensorflow backend, running '
                                    f'{backend}; use "data_parallel" on jax')
        import tensorflow as tf

        mirrored = tf.distribute.MirroredStrategy(devices=devices)
        return Placement("mirrored", "MirroredStrategy", mirrored.num_replicas_in_sync, scope=mirrored.scope(),
                         tf_strategy=mirrored)
    if strategy == "data_parallel":
        if backend != "jax":
            raise DistributionError(f'distribution strategy "data_parallel" needs the jax backend, running '
                                    f'{backend}; use "mirrored" on tensorflow')
        chosen = devices or keras.distribution.list_devices()
        keras.distribution.set_distribution(keras.distribution.DataParallel(devices=chosen))
        return Placement("data_parallel", "DataParallel", len(chosen))
    if strategy == "multi_worker":
        if devices:
            raise DistributionError('"distribution.devices" cannot be used with strategy "multi_worker": each '
                                    "worker uses all its visible GPUs (limit them with CUDA_VISIBLE_DEVICES)")
        if backend == "tensorflow":
            return _tensorflow_multi_worker()
        if backend == "jax":
            return _jax_multi_process(processes or ProcessSettings())
        raise DistributionError(f'distribution strategy "multi_worker" needs the tensorflow or jax backend, '
                                f"running {backend}")
    raise DistributionError(f"unknown distribution strategy {strategy!r}; allowed: {', '.join(STRATEGIES)}")


# ---------------------------------------------------------------------------- TensorFlow


def read_tf_config(text: str | None) -> tuple[int, int]:
    """Check a ``TF_CONFIG`` value; returns (this worker's number, number of workers).

    Training workers are the ``"chief"`` task (at most one; then it is worker 0) and the
    ``"worker"`` tasks, numbered as MultiWorkerMirroredStrategy numbers its input pipelines.
    Evaluators and parameter servers are not part of this kind of training.
    """
    how = ('set it on every worker, e.g. TF_CONFIG=\'{"cluster": {"worker": ["host0:12345", "host1:12345"]}, '
           '"task": {"type": "worker", "index": 0}}\' (index = this worker\'s place in the list)')
    if not text:
        raise DistributionError('strategy "multi_worker" on tensorflow needs the TF_CONFIG environment variable; '
                                + how)
    try:
        config = json.loads(text)
    except json.JSONDecodeError as error:
        raise DistributionError(f"TF_CONFIG is not valid JSON ({error}); {how}") from None
    cluster = config.get("cluster") if isinstance(config, dict) else None
    task = config.get("task") if isinstance(config, dict) else None
    if not isinstance(cluster, dict) or not isinstance(task, dict):
        raise DistributionError(f'TF_CONFIG needs a "cluster" and a "task" object; {how}')
    unknown = set(cluster) - {"chief", "worker"}
    if unknown:
        raise DistributionError(f"TF_CONFIG cluster jobs {sorted(unknown)} are not supported (only chief and worker)")
    for job, addresses in cluster.items():
        if not isinstance(addresses, list) or not all(isinstance(a, str) and ":" in a for a in addresses):
            raise DistributionError(f'TF_CONFIG cluster "{job}" must be a list of "host:port" addresses, '
                                    f"got {json.dumps(addresses)}")
    if len(cluster.get("chief", [])) > 1:
        raise DistributionError('TF_CONFIG cluster "chief" must have one address')
    kind, index = task.get("type"), task.get("index", 0)
    if kind not in cluster:
        raise DistributionError(f'TF_CONFIG task type {json.dumps(kind)} is not a job of the cluster '
                                f"({', '.join(sorted(cluster))})")
    if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < len(cluster[kind]):
        raise DistributionError(f'TF_CONFIG task index {json.dumps(index)} is out of range for the '
                                f'{len(cluster[kind])} "{kind}" address(es)')
    chiefs = len(cluster.get("chief", []))
    return (0 if kind == "chief" else chiefs + index), chiefs + len(cluster.get("worker", []))


def _tensorflow_multi_worker() -> Placement:
    import tensorflow as tf

    worker, workers = read_tf_config(os.environ.get("TF_CONFIG"))
    strategy = tf.distribute.MultiWorkerMirroredStrategy()
    return Placement("multi_worker", "MultiWorkerMirroredStrategy, cluster from TF_CONFIG",
                     strategy.num_replicas_in_sync, workers=workers, worker=worker, scope=strategy.scope(),
                     tf_strategy=strategy)


def _work_around_keras_multi_worker(model: keras.Model) -> str:
    """Three gaps of Keras 3.15's TensorFlow trainer under MultiWorkerMirroredStrategy
    (tensorflow/tensorflow#72388, keras-team/keras#20329), patched on this model instance:

    * ``fit``/``evaluate`` first peek at one batch and ``strategy.reduce`` it to build an
      unbuilt model; CollectiveAllReduce cannot reduce a nested (dict) batch. ColorizerModel
      is fully built and compiled before ``fit``, so the peek has nothing to do: skip it.
    * The step's logs are reduced with ``strategy.reduce("MEAN", value, axis=0)``, which
      fails for scalars. Each log gets a leading axis of length 1; that reduce then averages
      the per-replica values over all replicas of all workers (the global-batch mean, the
      same on every worker, so every worker's callbacks see the same numbers).
    * With ``steps_per_execution > 1`` the trainer pulls batches from the distributed iterator
      inside a ``tf.while_loop``/``tf.cond``, which fails under this strategy ("You must feed
      a value for placeholder tensor"): run one step per call.
    """
    model._maybe_symbolic_build = lambda iterator=None, data_batch=None: None
    train_step, test_step = model.train_step, model.test_step

    def with_axis(step):
        return lambda data: {name: value[None] for name, value in step(data).items()}

    model.train_step, model.test_step = with_axis(train_step), with_axis(test_step)
    if model.steps_per_execution == 1:
        return ""
    model.steps_per_execution = 1
    return ("steps_per_execution is 1 here: Keras 3.15 cannot run several steps per call under "
            "MultiWorkerMirroredStrategy (log and checkpoint intervals stay as set)")


# ---------------------------------------------------------------------------- JAX


def _jax_multi_process(settings: ProcessSettings) -> Placement:
    import jax

    n, i = settings.num_processes, settings.process_id
    if n is not None and n < 1:
        raise DistributionError(f"--num-processes must be at least 1, got {n}")
    if n is not None and i is not None and not 0 <= i < n:
        raise DistributionError(f"--process-id {i} is out of range for {n} processes (0 .. {n - 1})")
    if not jax.distributed.is_initialized():
        try:
            keras.distribution.initialize(settings.coordinator, n, i)
        except RuntimeError as error:  # JAX computed something before this call
            raise DistributionError(
                f'strategy "multi_worker" on jax must start the distributed runtime before JAX computes anything '
                f"({error}); tools/train.py does this first, a script must call keras_scft.distribute.distribute "
                "before it builds a model or touches a JAX array") from None
        except (ValueError, TypeError) as error:
            raise DistributionError(
                f'strategy "multi_worker" on jax could not start the distributed runtime ({error}). Give every '
                "process --coordinator HOST:PORT (process 0's address) --num-processes N --process-id I, or set "
                "KERAS_DISTRIBUTION_JOB_ADDRESSES / KERAS_DISTRIBUTION_NUM_PROCESSES / KERAS_DISTRIBUTION_PROCESS_ID; "
                "under Slurm or Open MPI JAX finds them itself") from None
    devices = keras.distribution.list_devices()
    # Each process feeds its own shard of the batch (ImageBatches(shard=...)); Keras then
    # assembles the global batch with jax.make_array_from_process_local_data.
    keras.distribution.set_distribution(keras.distribution.DataParallel(devices=devices, auto_shard_dataset=False))
    return Placement("multi_worker", "jax.distributed + keras.distribution.DataParallel", len(devices),
                     workers=jax.process_count(), worker=jax.process_index())
