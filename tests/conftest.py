"""Shared pytest fixtures (offline settings and thread count: see ../conftest.py)."""

import pytest


@pytest.fixture(autouse=True)
def _torch_seed():
    import torch

    torch.manual_seed(0)
    yield


@pytest.fixture(autouse=True)
def _one_thread():
    """One torch thread in every test, restored afterwards: code under test may
    change it (the evaluation sets its own), and on a shared 2-core runner two
    OpenMP threads per process thrash the LSTMs."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
