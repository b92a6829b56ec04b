"""Shared pytest fixtures (offline settings and thread count: see ../conftest.py)."""

import pytest

from tests.chromium import CHROMIUM

# what the recipe rows of test_recipes.py write (SpeechBrain copies each
# recipe script into its output folder): outputs, not tests
collect_ignore = ["tmp"]


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


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    """A browser test never skips its way to green on CI: there a missing
    Chromium is an error (``.ci/run`` installs it). Elsewhere the browser tests
    skip with the install command and every other test still runs."""
    import os

    if item.get_closest_marker("browser") is None or os.path.exists(CHROMIUM):
        return
    if os.environ.get("CI"):
        pytest.fail(
            f"{CHROMIUM} is missing on CI; .ci/run installs it (apt-get install chromium)",
            pytrace=False,
        )
