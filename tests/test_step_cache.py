"""The exported JAX train step (keras_scft.steps.exported): same math as the traced step, loaded
instead of traced when its key matches, another file when anything in the key changes."""

import keras
import numpy as np
import pytest

from tests.helpers import requires_backend, tiny_colorizer

pytestmark = [pytest.mark.multi_backend, requires_backend("jax")]


def _trained(cache=None):
    """Weights of a tiny model after fit() for two epochs of one step on ready examples, each
    epoch validated on two batches."""
    from tests.test_model import _examples

    keras.backend.clear_session()  # the same layer names, so the same config, as the last build
    model = tiny_colorizer()
    model.compile(loss_weights={"perceptual": 0, "style": 0})
    model.step_cache = cache
    x, y = _examples(n=2)
    model.fit(x, y, batch_size=2, epochs=2, validation_data=_examples(n=4, seed=1), validation_batch_size=2,
              verbose=0, shuffle=False)
    return [np.asarray(w) for w in model.get_weights()]


def _files(folder):
    return sorted(folder.glob("train_step-*.jaxexport")) if folder.exists() else []


def test_the_exported_step_computes_what_the_traced_step_does(tmp_path, caplog):
    """(Loading the kept step in a second process: tests/training/test_compile_cache.py.)"""
    import jax

    from keras_scft.steps.exported import ExportedStepCache

    plain = _trained()
    cache = ExportedStepCache(tmp_path / "steps")
    with jax.log_compiles(True), caplog.at_level("WARNING"):
        exported = _trained(cache)
    assert len(_files(cache.folder)) == 1
    # one program for both steps (fresh variables, then the step's own outputs as arguments)
    # and one for the validation steps (fresh metric variables, then the step's outputs)
    compiled = [r.getMessage().split(" with ")[0] for r in caplog.records if r.getMessage().startswith("Compiling")]
    assert compiled.count("Compiling jit(call)") == 1 and compiled.count("Compiling jit(test_step)") == 1, compiled
    for a, b in zip(plain, exported):
        np.testing.assert_allclose(b, a, rtol=1e-6, atol=1e-6)


def _toy_step(state, data):
    return {"total": sum(x.sum() for x in state) + data["x"].sum()}, [x + data["x"].mean() for x in state]


def _toy_run(cache, material=None):
    step = cache.wrap(_toy_step, lambda: material or {"toy": 1})
    logs, state = step([np.ones(3, "float32")], {"x": np.full((2, 2), 2.0, "float32")})
    return float(logs["total"]), np.asarray(state[0])


def test_a_new_key_writes_a_new_file_and_the_same_key_reads_it(tmp_path):
    from keras_scft.steps.exported import ExportedStepCache

    cache = ExportedStepCache(tmp_path)
    assert _toy_run(cache) == (11.0, pytest.approx(np.full(3, 3.0)))
    _toy_run(cache)
    assert len(_files(tmp_path)) == 1
    _toy_run(cache, {"toy": 2})
    assert len(_files(tmp_path)) == 2


def test_an_unreadable_file_is_replaced_with_a_warning(tmp_path):
    from keras_scft.steps.exported import ExportedStepCache

    cache = ExportedStepCache(tmp_path)
    expected = _toy_run(cache)
    (kept,) = _files(tmp_path)
    kept.write_bytes(b"not an exported program")
    with pytest.warns(UserWarning, match="unreadable"):
        again = _toy_run(cache)
    assert kept.read_bytes() != b"not an exported program" and again[0] == expected[0]


def test_a_preloaded_step_runs_when_its_key_is_the_one_its_settings_had(tmp_path, monkeypatch):
    from keras_scft.steps.exported import ExportedStepCache

    first = ExportedStepCache(tmp_path)
    first.preload({"recipe": "abc"})  # no index yet: nothing to load
    expected = _toy_run(first)
    (kept,) = _files(tmp_path)
    assert not first.preloaded and kept.name == f"train_step-{first.index_path({'recipe': 'abc'}).read_text()}.jaxexport"
    second = ExportedStepCache(tmp_path)  # the next start with the same settings
    second.preload({"recipe": "abc"})
    monkeypatch.setattr(second, "_read", lambda path: pytest.fail(f"{path} read at the first call"))
    total, state = _toy_run(second)
    assert second.preloaded and total == expected[0]
    np.testing.assert_array_equal(state, expected[1])


def test_a_preload_of_another_key_is_neither_waited_for_nor_used_and_the_index_follows(tmp_path, monkeypatch):
    import threading

    import jax

    from keras_scft.steps.exported import ExportedStepCache

    first = ExportedStepCache(tmp_path)
    index = first.index_path({"recipe": "abc"})
    first.preload({"recipe": "abc"})
    _toy_run(first, {"toy": 1})
    old_key = index.read_text()
    release, deserialize = threading.Event(), jax.export.deserialize

    def held(data):  # the preload thread's load stays unfinished until the first call is done
        if threading.current_thread().name == "keras_scft-preload-step":
            release.wait(60)
        return deserialize(data)

    monkeypatch.setattr(jax.export, "deserialize", held)
    second = ExportedStepCache(tmp_path)
    second.preload({"recipe": "abc"})  # loads the program of {"toy": 1}; the step's key is now another
    try:
        assert _toy_run(second, {"toy": 2})[0] == 11.0 and not second.preloaded
        assert any(t.name == "keras_scft-preload-step" and t.is_alive() for t in threading.enumerate())
    finally:
        release.set()
    assert index.read_text() != old_key and len(_files(tmp_path)) == 2


def test_the_index_is_another_after_an_upgrade_or_an_edit_of_the_package(tmp_path, monkeypatch):
    """So a start after either finds no index, instead of loading a program of the old key whose
    executable may no longer be in JAX's compilation cache (a full compile for nothing)."""
    from keras_scft.steps import exported

    cache = exported.ExportedStepCache(tmp_path)
    index = cache.index_path({"recipe": "abc"})
    assert cache.index_path({"recipe": "abc"}) == index != cache.index_path({"recipe": "abd"})
    monkeypatch.setattr(keras, "__version__", keras.__version__ + "+other")
    assert cache.index_path({"recipe": "abc"}) != index
    monkeypatch.undo()
    package = tmp_path / "package"
    package.mkdir()
    (package / "layers.py").write_text("A = 1\n")
    monkeypatch.setattr(exported, "_PACKAGE", package)
    before = cache.index_path({"recipe": "abc"})
    (package / "layers.py").write_text("A = 2\n")
    assert cache.index_path({"recipe": "abc"}) != before


def test_a_preload_of_an_unreadable_file_leaves_it_to_the_first_call(tmp_path):
    from keras_scft.steps.exported import ExportedStepCache

    first = ExportedStepCache(tmp_path)
    first.preload({"recipe": "abc"})
    expected = _toy_run(first)
    (kept,) = _files(tmp_path)
    kept.write_bytes(b"not an exported program")
    second = ExportedStepCache(tmp_path)
    second.preload({"recipe": "abc"})
    with pytest.warns(UserWarning, match="unreadable"):
        assert _toy_run(second)[0] == expected[0]
    assert not second.preloaded and kept.read_bytes() != b"not an exported program"


def test_a_step_that_cannot_be_exported_runs_traced_with_a_warning(tmp_path, monkeypatch):
    import jax

    from keras_scft.steps.exported import ExportedStepCache

    def refuse(*args, **kwargs):
        raise ValueError("custom call not allowed")

    monkeypatch.setattr(jax.export, "export", refuse)
    with pytest.warns(UserWarning, match="could not be exported.*custom call not allowed"):
        assert _toy_run(ExportedStepCache(tmp_path))[0] == 11.0
    assert not _files(tmp_path)


def test_the_key_covers_the_model_config_the_settings_and_the_shapes():
    import jax

    from keras_scft.steps.exported import key_material, step_key

    keras.backend.clear_session()
    model = tiny_colorizer()
    model.compile(loss_weights={"perceptual": 0, "style": 0})
    material = key_material(model)
    spec = [jax.ShapeDtypeStruct((2, 32, 32, 3), "uint8")]
    key = step_key(material, spec)
    assert key == step_key(key_material(model), spec)
    assert key != step_key(material, [jax.ShapeDtypeStruct((1, 32, 32, 3), "uint8")])
    assert key != step_key(material, {"image": spec[0]})
    assert key != step_key({**material, "dtype_policy": "mixed_bfloat16"}, spec)
    model.compile(loss_weights={"perceptual": 0, "style": 0}, triplet_margin=6.0)
    assert step_key(key_material(model), spec) != key
