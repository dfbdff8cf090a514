"""Shared test setup: TensorFlow backend on CPU, float32 policy between tests.

Paths of the real third-party data beside the checkout are in tests/shared_data.py.
"""
import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")  # tests are CPU tests, also on a GPU machine

import keras  # noqa: E402
import pytest  # noqa: E402


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: takes more than a few seconds; not run in CI")


@pytest.fixture(autouse=True)
def _float32_policy():
    """Keeps a test that sets a mixed-precision policy from leaking it into the next test."""
    yield
    keras.mixed_precision.set_global_policy("float32")
