"""Test configuration.

The suite runs twice (see README): once under the TensorFlow backend (everything), once
under JAX (only tests marked ``multi_backend``), each pass on two pytest-xdist workers. The
backend must be chosen before Keras is imported, so it is fixed here from ``KERAS_BACKEND``
(default: tensorflow); the workers inherit it.
"""

import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_SCFT_QUIET", "1")

import pathlib  # noqa: E402

import pytest  # noqa: E402

SAMPLE_DIR = pathlib.Path(__file__).resolve().parent.parent / "keras_scft" / "data" / "sample"


def pytest_report_header(config):
    return f"keras backend: {os.environ['KERAS_BACKEND']}"


@pytest.fixture(scope="session")
def backend() -> str:
    return os.environ["KERAS_BACKEND"]


@pytest.fixture(scope="session")
def sample_dir() -> pathlib.Path:
    """The committed OpenMoji sample (line art + color PNGs)."""
    return SAMPLE_DIR
