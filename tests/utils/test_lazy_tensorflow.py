"""A run of another backend leaves TensorFlow unimported (keras_scft.utils.lazy_tensorflow).

Each check runs in a fresh JAX-backend process: the test processes have TensorFlow imported.
"""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.helpers import own_processes
from tests.training.test_train import tiny_recipe

ROOT = Path(__file__).resolve().parents[2]


def run_jax(code: str, **env) -> dict:
    """Run ``code`` (which prints one JSON line last) in a fresh JAX-backend process."""
    result = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                            env={**os.environ, "KERAS_BACKEND": "jax", "PYTHONPATH": str(ROOT),
                                 "KERAS_SCFT_QUIET": "1", **env}, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_keras_seeds_and_serializes_without_importing_tensorflow_and_imports_it_after():
    found = run_jax("""
        import json, sys
        import keras, numpy as np
        from keras.src.utils import module_utils
        from keras_scft.utils.lazy_tensorflow import tensorflow_left_unimported

        def weights():
            layer = keras.layers.Dense(3)
            layer.build((None, 4))
            return layer.get_weights()[0].tolist()

        with tensorflow_left_unimported():
            keras.utils.set_random_seed(7)
            inside = weights()
            keras.saving.serialize_keras_object(keras.optimizers.Adam(1e-4))
            keras.saving.serialize_keras_object(keras.layers.Dense(3))
            untouched = "tensorflow" not in sys.modules
        after = module_utils.tensorflow.available  # outside: Keras' own behaviour, which imports
        keras.utils.set_random_seed(7)
        print(json.dumps({"untouched": untouched, "after": after, "imported": "tensorflow" in sys.modules,
                          "same_weights": inside == weights()}))
    """)
    assert found == {"untouched": True, "after": True, "imported": True, "same_weights": True}


def test_blocks_nest_and_the_outermost_restores_keras_module():
    found = run_jax("""
        import json, sys
        import keras
        from keras.src.utils import module_utils
        from keras_scft.utils.lazy_tensorflow import tensorflow_left_unimported

        original = type(module_utils.tensorflow)
        with tensorflow_left_unimported():
            with tensorflow_left_unimported():  # train() around ColorizerModel.compile
                keras.saving.serialize_keras_object(keras.optimizers.Adam(1e-4))
            inner_left = type(module_utils.tensorflow) is not original
        print(json.dumps({"inner_left_it_patched": inner_left, "restored": type(module_utils.tensorflow) is original,
                          "imported": "tensorflow" in sys.modules}))
    """)
    assert found == {"inner_left_it_patched": True, "restored": True, "imported": False}


def test_once_tensorflow_is_imported_keras_sees_it_inside_the_block():
    found = run_jax("""
        import json
        import keras
        from keras.src.utils import module_utils
        from keras_scft.utils.lazy_tensorflow import tensorflow_left_unimported

        with tensorflow_left_unimported():
            before = module_utils.tensorflow.available
            import tensorflow as tf
            after = module_utils.tensorflow.available
            shape = keras.saving.serialize_keras_object(tf.TensorShape([2, 3]))
        print(json.dumps({"before": before, "after": after, "shape": shape}))
    """)
    assert found == {"before": False, "after": True, "shape": [2, 3]}


def test_the_python_api_compiles_and_fits_without_importing_tensorflow():
    """ColorizerModel.compile and get_config (also the kept step's key) serialize Keras
    objects; on JAX that no longer imports TensorFlow (a user's own keras.utils.set_random_seed
    or model.save still does: Keras' code, outside ours)."""
    found = run_jax("""
        import json, sys
        import numpy as np
        from keras_scft import ColorizerModel, SelfAugment, build_discriminator, build_generator
        from tests.helpers import TINY_WIDTHS

        model = ColorizerModel(generator=build_generator(widths=TINY_WIDTHS, residual_blocks=1),
                               discriminator=build_discriminator(widths=(16, 32, 32)), perceptual=None,
                               augment=SelfAugment(feature_stride=16, seed=0))
        model.compile(loss_weights={"perceptual": 0, "style": 0})
        images = np.random.default_rng(0).integers(0, 256, (4, 32, 32, 3)).astype("uint8")
        model.fit({"image": images}, batch_size=2, epochs=1, verbose=0)
        model.get_config()
        print(json.dumps({"imported": "tensorflow" in sys.modules}))
    """)
    assert found == {"imported": False}


@own_processes
@pytest.mark.slow
def test_a_jax_training_run_with_tensorboard_never_imports_tensorflow(tmp_path, sample_dir):
    recipe = tiny_recipe(tmp_path, sample_dir, train={"steps": 2}, output={"tensorboard": True})
    recipe["backend"] = "jax"
    (tmp_path / "recipe.json").write_text(json.dumps(recipe))
    found = run_jax(f"""
        import json, sys
        from keras_scft.recipes import load_recipe
        from keras_scft.training.run import train
        final = train(load_recipe({str(tmp_path / "recipe.json")!r}), progress=False)
        print(json.dumps({{"steps": final["steps"], "imported": "tensorflow" in sys.modules}}))
    """, KERAS_SCFT_CACHE=str(tmp_path / "cache"))
    assert found == {"steps": 2, "imported": False}
    logs = tmp_path / "run" / "logs"
    assert [len(list((logs / sub).glob("events.out.tfevents.*"))) for sub in ("train", "validation")] == [1, 1]
    assert (tmp_path / "run" / "generator.keras").is_file()
