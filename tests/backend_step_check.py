"""One training step on the running backend from given weights; for comparing backends.

Run as ``python -m tests.backend_step_check WEIGHTS.npz OUT.npz`` with KERAS_BACKEND set: the
tiny test ColorizerModel (with a small random VGG, so all five losses run) takes its weights
from WEIGHTS.npz (written there first if the file does not exist), trains one step with plain
SGD at rate 1 on the fixed test batch, and writes the weights after the step and the step's
losses (``log_<name>``) to OUT.npz.
"""

import sys
from pathlib import Path

import numpy as np

PERCEPTUAL = {"arch": "vgg16", "weights": None, "layers": ["relu1_2", "relu2_2"]}


def main(weights: Path, out: Path) -> None:
    import keras

    from tests.helpers import tiny_colorizer
    from tests.test_model import _examples

    model = tiny_colorizer(perceptual=PERCEPTUAL)
    model.compile(g_optimizer=keras.optimizers.SGD(1.0), d_optimizer=keras.optimizers.SGD(1.0))
    if not weights.exists():
        np.savez(weights, *model.get_weights())
    with np.load(weights) as stored:
        model.set_weights([stored[f"arr_{i}"] for i in range(len(stored.files))])
    x, y = _examples()
    logs = model.train_on_batch(x, y, return_dict=True)
    np.savez(out, *model.get_weights(), **{f"log_{k}": np.float64(v) for k, v in logs.items()})


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
