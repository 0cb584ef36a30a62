"""Helpers shared by the tests (import as ``from tests.helpers import ...``)."""

import os

import pytest


def requires_backend(*names: str):
    """Skip a test unless the active Keras backend is one of ``names``."""
    return pytest.mark.skipif(
        os.environ.get("KERAS_BACKEND", "tensorflow") not in names,
        reason=f"needs the {' or '.join(names)} backend",
    )
