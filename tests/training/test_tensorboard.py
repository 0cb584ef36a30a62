import numpy as np
import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.util import tensor_util

from keras_scft.training.tensorboard import ScalarLog


def read(folder):
    """{tag: [(step, value), ...]} of the scalars in a TensorBoard folder."""
    events = EventAccumulator(str(folder))
    events.Reload()
    return {tag: [(e.step, float(tensor_util.make_ndarray(e.tensor_proto))) for e in events.Tensors(tag)]
            for tag in events.Tags()["tensors"]}


@pytest.mark.multi_backend
def test_epoch_logs_become_train_and_validation_scalars(tmp_path):
    log = ScalarLog(tmp_path / "logs")
    log.on_epoch_end(0, {"rec": 0.5, "loss_g": np.float32(3.25), "val_psnr": None})
    log.on_epoch_end(1, {"rec": 0.25, "loss_g": 2.0, "val_psnr": 18.5, "val_rec": np.float64(0.125)})
    log.on_epoch_end(2, {"rec": 0.125, "loss_g": 1.5, "val_psnr": None, "note": "text"})
    log.on_train_end()
    assert read(tmp_path / "logs" / "train") == {
        "epoch_rec": [(0, 0.5), (1, 0.25), (2, 0.125)], "epoch_loss_g": [(0, 3.25), (1, 2.0), (2, 1.5)]}
    # validation metrics under their own names, only where they were computed
    assert read(tmp_path / "logs" / "validation") == {"epoch_psnr": [(1, 18.5)], "epoch_rec": [(1, 0.125)]}


def test_a_resumed_run_adds_a_file_and_writes_nothing_before_the_first_epoch(tmp_path):
    first = ScalarLog(tmp_path)
    first.on_epoch_end(0, {"rec": 1.0})
    first.on_train_end()
    second = ScalarLog(tmp_path)
    assert not (tmp_path / "validation").exists()
    second.on_epoch_end(1, {"rec": 0.5})
    second.on_train_end()
    assert len(list((tmp_path / "train").iterdir())) == 2
    assert read(tmp_path / "train") == {"epoch_rec": [(0, 1.0), (1, 0.5)]}
