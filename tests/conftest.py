"""Shared pytest fixtures (offline settings and thread count: see ../conftest.py)."""

import pytest


@pytest.fixture(autouse=True)
def _torch_seed():
    import torch

    torch.manual_seed(0)
    yield
