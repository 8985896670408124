"""scripts/time_ranks.py, behind docs/scaling.md's table, still runs (K = 1 plain, K = 2 under torchrun)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _module():
    spec = importlib.util.spec_from_file_location("time_ranks", ROOT / "scripts" / "time_ranks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_time_ranks_refuses_bad_arguments():
    with pytest.raises(SystemExit) as exc:
        _module().main(["--steps", "2"])
    assert exc.value.code == 2


@pytest.mark.slow
def test_time_ranks_times_every_case_for_one_and_two_processes(tmp_path, monkeypatch):
    module = _module()
    monkeypatch.setattr(module, "CASES", {k: v for k, v in module.CASES.items() if "independent" in k or "28x28" in k})
    out = tmp_path / "scaling.json"
    assert module.main(["--steps", "8", "--repeats", "1", "--threads", "1", "--out", str(out)]) == 0
    rows = json.loads(out.read_text())["rows"]
    assert [r["ranks"] for r in rows] == [1, 2, 1, 2]
    assert all(r["steps_per_second"] > 0 and r["samples_per_second"] == pytest.approx(r["steps_per_second"] * r["local_batch"] * r["ranks"]) for r in rows)
