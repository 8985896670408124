"""The maintenance scripts still run: the device timing script behind README's CPU/GPU table."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_time_devices_times_every_case_on_every_device(tmp_path, monkeypatch):
    module = _load("time_devices")
    monkeypatch.setattr(module, "WARMUP", 2)
    out = tmp_path / "times.json"
    assert module.main(["--steps", "3", "--threads", "1", "--out", str(out)]) == 0
    report = json.loads(out.read_text())
    devices = set(report["devices"])
    assert "cpu" in devices
    training = [r for r in report["rows"] if "steps_per_second" in r]
    sampling = [r for r in report["rows"] if "seconds" in r]
    assert len(training) == 5 * len(devices) and len(sampling) == len(devices)
    assert all(r["steps_per_second"] > 0 for r in training) and all(r["seconds"] > 0 for r in sampling)


def test_time_devices_refuses_bad_arguments():
    module = _load("time_devices")
    with pytest.raises(SystemExit) as exc:
        module.main(["--steps", "0"])
    assert exc.value.code == 2
