"""Fixtures shared across the test suite."""

import pytest
import torch


@pytest.fixture
def one_thread():
    """Run a test on one torch thread (tiny tensors spin-wait on a shared 2-core machine)."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
