"""The JAX persistent compilation cache and the exported train step: a second run of the same
recipe neither traces nor compiles the step again."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import own_processes, requires_backend
from tests.training.test_train import tiny_recipe

ROOT = Path(__file__).resolve().parents[2]


def _train(tmp_path: Path, sample_dir, name: str, cache: str, steps: str) -> dict:
    recipe = tiny_recipe(tmp_path / name, sample_dir,
                         output={"compile_cache": cache, "step_cache": steps, "sample_interval": 0},
                         train={"steps": 2, "steps_per_execution": 2})
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps(recipe))
    env = {**os.environ, "KERAS_BACKEND": "jax", "PYTHONPATH": str(ROOT), "KERAS_SCFT_QUIET": ""}
    proc = subprocess.run([sys.executable, str(ROOT / "tools" / "train.py"), str(path), "--quiet"], env=env,
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "compilation included" in proc.stdout + proc.stderr
    return json.loads((tmp_path / name / "run" / "final_metrics.json").read_text())


@own_processes
@pytest.mark.slow
@pytest.mark.multi_backend
@requires_backend("jax")
def test_second_run_reuses_the_compiled_step(tmp_path, sample_dir):
    cache, steps = tmp_path / "jax_cache", tmp_path / "jax_steps"
    first = _train(tmp_path, sample_dir, "first", str(cache), str(steps))
    assert cache.is_dir() and any(cache.iterdir()), "the first run wrote nothing to the compilation cache"
    (kept,) = steps.glob("train_step-*.jaxexport")  # the exported step, one key
    written = kept.stat().st_mtime_ns
    second = _train(tmp_path, sample_dir, "second", str(cache), str(steps))
    # the second process computed the same key and loaded the file: nothing new, nothing rewritten
    assert list(steps.glob("train_step-*.jaxexport")) == [kept] and kept.stat().st_mtime_ns == written
    # the second start loaded the kept program while it built the model, and ran it
    assert not first["train_step_preloaded"] and second["train_step_preloaded"]
    for key in ("loss_g", "loss_d", "rec"):  # the loaded step trains as the exported one did
        assert second[key] == first[key], key
    print(f"seconds to the first training call: {first['seconds_to_first_step']:.1f} cold, "
          f"{second['seconds_to_first_step']:.1f} from the cache")
    assert second["seconds_to_first_step"] < 0.6 * first["seconds_to_first_step"]
    # the time before fit (data, model, validation set) is reported apart from the first call
    assert 0 < second["seconds_to_fit"] < second["seconds_to_first_step"]
