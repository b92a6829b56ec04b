"""Shared pytest fixtures. Tests never touch the network."""

import os

import pytest

# Hub libraries must never go online from a test.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


@pytest.fixture(autouse=True)
def _torch_seed():
    import torch

    torch.manual_seed(0)
    yield
