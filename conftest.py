"""Root conftest: settings shared by the tests and the package's doctests."""

import os

# Tests never go online; hub libraries must fail instead of downloading.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import torch  # noqa: E402

# One intra-op thread: tests start servers, torchrun workers and process pools
# beside the test process, and on a 2-core runner two OpenMP threads per process
# made LSTM and FFT code 6-10x slower (measured on GE2E and Griffin-Lim).
torch.set_num_threads(1)
