import pytest
import torch


@pytest.fixture(autouse=True, scope="session")
def _torch_single_thread():
    """Run the suite on one torch thread: faster on small problems, repeatable.

    The library itself never changes global torch settings; only the test run does.
    """
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
