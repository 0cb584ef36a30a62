"""The JAX train step kept across runs as a ``jax.export`` artifact.

JAX's persistent compilation cache keys an executable on the *lowered* program, so every start
traces and lowers the train step in Python before it asks the cache: for recipes/openmoji.json
3.1 + 0.8 s of a second start on the H100, 1.8 + 0.8 s on a 2-core CPU. :class:`ExportedStepCache`
keeps the traced step, serialized (``jax.export.Exported``: the program, not weights or optimizer
state, which are its arguments); a later start with the same key lowers that in ~0.2 s.

The key covers what decides the traced program: the source files of keras_scft and of the
model's, its layers' and its optimizers' classes; the model's config and compile config; the
dtype policy and floatx; the versions of jax, jaxlib and keras; jax's numerics flags; the
platform; and the arguments' structure, shapes and dtypes. A changed file, setting or shape
gives another key, so a stale program is never run.

The key needs the built model, so the kept program's executable (JAX's compilation cache) would
load only at the first call, after the model build. :meth:`ExportedStepCache.preload` starts that
load in a thread before the build, for the key that the same run settings had last time (an
index file per fingerprint of the settings, keras_scft's sources and the library versions); the
first call uses it only if its key is the real one, and does not wait for it otherwise.
"""

from __future__ import annotations

import hashlib
import json
import sys
import threading
import warnings
from collections.abc import Callable
from pathlib import Path

import jax
import keras
import numpy as np

from keras_scft.data.io import write_atomic
from keras_scft.utils.paths import files_digest

FORMAT = 1  # bump when the key's material or the file's content changes meaning
_PACKAGE = Path(__file__).resolve().parents[1]
_JAX_FLAGS = ("jax_enable_x64", "jax_default_matmul_precision", "jax_numpy_rank_promotion",
              "jax_numpy_dtype_promotion", "jax_default_prng_impl", "jax_threefry_partitionable")


def _source_files(model: keras.Model) -> list[Path]:
    """keras_scft's .py files and the files defining the classes of the model, its layers and
    its optimizers, outside Keras (whose version is in the key)."""
    files = set(_PACKAGE.rglob("*.py"))
    objects = [model, *model._flatten_layers(include_self=False)]
    objects += [o for o in (getattr(model, "g_optimizer", None), getattr(model, "d_optimizer", None),
                            model.optimizer) if o is not None]
    for obj in objects:
        for cls in type(obj).__mro__:
            module = sys.modules.get(cls.__module__)
            path = getattr(module, "__file__", None)
            if path and cls.__module__.split(".")[0] != "keras":
                files.add(Path(path).resolve())
    return sorted(files)


def _versions() -> dict:
    import jaxlib

    return {"jax": jax.__version__, "jaxlib": jaxlib.__version__, "keras": keras.__version__}


def key_material(model: keras.Model) -> dict:
    """What the traced train step depends on, besides its arguments (JSON-ready)."""
    return {
        "format": FORMAT,
        "versions": _versions(),
        "sources": files_digest(_source_files(model)),
        "class": f"{type(model).__module__}.{type(model).__qualname__}",
        "config": model.get_config(),
        "compile": model.get_compile_config(),
        "dtype_policy": keras.config.dtype_policy().name,
        "floatx": keras.config.floatx(),
        "jax_flags": {flag: str(getattr(jax.config, flag, None)) for flag in _JAX_FLAGS},
        "platform": jax.default_backend(),
    }


def _spec(x) -> jax.ShapeDtypeStruct:
    return jax.ShapeDtypeStruct(np.shape(x), x.dtype if hasattr(x, "dtype") else np.asarray(x).dtype)


def _digest(payload: dict) -> str:
    """32 hex digits of a JSON-ready dict (other values by their repr)."""
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=repr).encode()).hexdigest()[:32]


def step_key(material: dict, specs) -> str:
    """32 hex digits from the material and the argument specs (structure, shapes, dtypes)."""
    leaves, treedef = jax.tree.flatten(specs)
    return _digest({**material, "tree": str(treedef), "avals": [(list(s.shape), str(s.dtype)) for s in leaves]})


def _first_device() -> jax.sharding.Sharding:
    return jax.sharding.SingleDeviceSharding(jax.devices()[0])


def _placement(state) -> jax.sharding.Sharding:
    """Where ``state``'s first array is (the first device for host arrays)."""
    return getattr(jax.tree.leaves(state)[0], "sharding", None) or _first_device()


def _placed_jit(step: Callable, placement: jax.sharding.Sharding) -> Callable:
    """``step`` jitted (state donated) with ``placement`` for all its arguments and results. The
    exported program commits its results to the device; without one placement, jit compiles
    (or loads) a program per placement of the arguments (fresh variables and numpy batches,
    then committed step outputs, then a mix), each a second or more of a start and 14-16 s of
    a cold one."""
    return jax.jit(step, donate_argnums=0, in_shardings=placement, out_shardings=placement)


def placed(step: Callable) -> Callable:
    """``step(state, data)`` jitted at its first call by :func:`_placed_jit`: for the steps
    that see the kept train step's results (the validation step)."""
    programs = []

    def call(state, data):
        if not programs:
            programs.append(_placed_jit(step, _placement(state)))
        return programs[0](state, data)

    return call


class ExportedStepCache:
    """A folder of exported train steps, one file per key (``train_step-<key>.jaxexport``), and
    per digest of run settings the key they last had (``settings-<digest>.key``).

    Args:
        folder: where the files go (created when the first is written).

    Attributes:
        preloaded: True once a step ran the program :meth:`preload` loaded.
    """

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)
        self.preloaded = False
        self._index: Path | None = None  # preload's settings file
        self._loading: tuple[str, threading.Thread, list] | None = None  # key, thread, its result

    @staticmethod
    def applies(model: keras.Model) -> bool:
        """True where fit() jits one step on one process without a Keras distribution: the
        case this cache handles (sharded steps trace as before)."""
        return (keras.backend.backend() == "jax" and not model.run_eagerly and bool(model.jit_compile)
                and keras.distribution.distribution() is None and jax.process_count() == 1)

    def path(self, key: str) -> Path:
        return self.folder / f"train_step-{key}.jaxexport"

    def index_path(self, settings: dict) -> Path:
        """The settings' index file, named by a digest of the settings and of what the key
        depends on that is known before the model is built (keras_scft's sources, the versions
        of jax, jaxlib and keras): after an upgrade or an edit the preload finds no index,
        rather than loading a stale program whose executable is no longer cached."""
        package = files_digest(sorted(_PACKAGE.rglob("*.py")))
        fingerprint = {"settings": settings, "format": FORMAT, "versions": _versions(), "package": package}
        return self.folder / f"settings-{_digest(fingerprint)}.key"

    def preload(self, settings: dict) -> None:
        """Start loading, in a thread, the program kept under the key that the same ``settings``
        (JSON-ready: what decides the step besides the code, e.g. a recipe without its output
        section) had last time: its executable then loads while the caller builds the model.
        The first call runs it if its own key is that one, and records its key for these
        settings either way. Nothing happens when the index or its file is missing; a failed
        load is left to the first call (which reads or traces the step as usual)."""
        self._index = self.index_path(settings)
        try:
            key = self._index.read_text().strip()
        except OSError:
            return
        path, loaded = self.path(key), []
        if not path.exists():
            return

        def load():
            try:
                exported = jax.export.deserialize(bytearray(path.read_bytes()))
                specs = [jax.ShapeDtypeStruct(a.shape, a.dtype) for a in exported.in_avals]
                args, kwargs = jax.tree.unflatten(exported.in_tree, specs)
                placement = _first_device()
                loaded.append((placement, _placed_jit(exported.call, placement).lower(*args, **kwargs).compile()))
            except Exception:  # noqa: BLE001 (the first call reports what is wrong with the file)
                pass

        thread = threading.Thread(target=load, name="keras_scft-preload-step", daemon=True)
        thread.start()
        self._loading = (key, thread, loaded)

    def _take_preloaded(self, key: str, state) -> Callable | None:
        """The preloaded program if it was loaded for ``key`` and ``state``'s placement. A
        preload of another key is not waited for (its thread, a daemon, finishes unused)."""
        if self._loading is None:
            return None
        loading_key, thread, loaded = self._loading
        self._loading = None
        if loading_key != key:
            return None
        thread.join()
        if not loaded:
            return None
        placement, program = loaded[0]
        return program if placement == _placement(state) else None

    def _remember(self, key: str) -> None:
        """Record ``key`` as the last one of the preloaded settings, if it changed and is kept."""
        index = self._index
        if index is None or not self.path(key).exists():
            return
        try:
            if not index.exists() or index.read_text().strip() != key:
                write_atomic(index, key.encode())
        except OSError as error:
            warnings.warn(f"could not record the kept train step's key in {index}: {error}", stacklevel=4)

    def wrap(self, step: Callable, material: Callable[[], dict]) -> Callable:
        """``step(state, data) -> (logs, state)`` jitted (state donated) through the kept
        program: loaded when its key's file exists, else traced, exported and written.
        ``material()`` gives the key's material besides the arguments (:func:`key_material`
        of the model); it is called once, at the first call."""
        programs, known = {}, []

        def call(state, data):
            leaves, treedef = jax.tree.flatten(data)
            signature = (treedef, tuple((np.shape(x), str(getattr(x, "dtype", ""))) for x in leaves))
            program = programs.get(signature)
            if program is None:
                if not known:
                    known.append(material())
                program = programs[signature] = self._program(step, known[0], state, data)
            return program(state, data)

        return call

    def _program(self, step: Callable, material: dict, state, data) -> Callable:
        specs = jax.tree.map(_spec, (state, data))
        key = step_key(material, specs)
        program = self._take_preloaded(key, state)
        if program is not None:
            self.preloaded = True
            return program
        path = self.path(key)
        exported = self._read(path)
        if exported is None:
            try:
                exported = jax.export.export(jax.jit(step))(*specs)
            except Exception as error:  # noqa: BLE001 (e.g. a custom call jax.export refuses)
                warnings.warn(f"the train step could not be exported ({type(error).__name__}: {error}); "
                              "it is traced anew on every start", stacklevel=3)
                return jax.jit(step, donate_argnums=0)
            try:
                self.folder.mkdir(parents=True, exist_ok=True)
                write_atomic(path, exported.serialize())
            except OSError as error:
                warnings.warn(f"could not keep the exported train step in {path}: {error}", stacklevel=3)
        self._remember(key)
        return _placed_jit(exported.call, _placement(state))

    @staticmethod
    def _read(path: Path) -> jax.export.Exported | None:
        if not path.exists():
            return None
        try:
            return jax.export.deserialize(bytearray(path.read_bytes()))
        except Exception as error:  # noqa: BLE001 (a truncated or foreign file: export again)
            warnings.warn(f"the kept train step {path} is unreadable ({type(error).__name__}: {error}); "
                          "tracing the step again and replacing the file", stacklevel=4)
            return None
