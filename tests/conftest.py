import os
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


@pytest.fixture(autouse=True)
def _few_threads():
    # 2-core machines: more threads than cores only adds contention between parallel pieces.
    torch.set_num_threads(min(2, os.cpu_count() or 1))
    yield
