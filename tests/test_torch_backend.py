"""The PyTorch backend: inference works, fit raises a clear error (run in a subprocess, since
the backend is fixed per process). Skipped where torch is not installed."""

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

SCRIPT = """
import numpy as np
from keras_scft import colorize
from tests.helpers import tiny_colorizer
model = tiny_colorizer()
out = colorize(model, np.full((2, 40, 56, 1), 255, np.uint8), np.zeros((2, 32, 32, 3), np.uint8))
assert out.shape == (2, 40, 56, 3) and out.dtype == np.uint8
model.compile(loss_weights={"perceptual": 0, "style": 0})
try:
    model.train_on_batch({"image": np.zeros((2, 32, 32, 3), np.uint8)})
except NotImplementedError as error:
    print("FIT:", error)
"""


@pytest.mark.skipif(importlib.util.find_spec("torch") is None, reason="torch is not installed")
def test_torch_inference_works_and_fit_says_not_supported():
    env = {**os.environ, "KERAS_BACKEND": "torch", "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-c", SCRIPT], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "FIT: ColorizerModel.fit is not supported on the torch backend" in proc.stdout
