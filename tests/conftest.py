import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


@pytest.fixture(autouse=True)
def _few_threads():
    # Small models on a shared 2-core machine: one intra-op thread avoids oversubscription with the
    # OT worker thread and the app's background jobs (measured 17 ms vs 200+ ms per step under load).
    torch.set_num_threads(1)
    yield
