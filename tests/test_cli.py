"""The command-line contract: ``python -m gft pretrain|finetune|sample|evaluate``.

The contract is tested through ``gft.cli.main(argv)`` in this process (a subprocess pays seconds of
torch and POT imports per call); two slow tests run the real ``python -m gft`` to check the entry point,
exit codes and the one-line error on a real stderr.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import ROOT, cli_ok, run_cli

from gft.core.checkpoints import load_checkpoint, save_checkpoint
from gft.core.models import MLPFlow, ModelConfig


def last_json(stdout: str) -> dict:
    return json.loads(stdout.strip().splitlines()[-1])


def test_pipeline_pretrain_on_a_user_file_finetune_sample_evaluate(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)  # relative paths, as a user types them
    # A user .csv (with a header row) as the pretraining data: a tilted Gaussian blob.
    rng = np.random.default_rng(0)
    pts = rng.normal(size=(400, 2)) * [1.0, 0.3] + [1.0, -2.0]
    (tmp_path / "pts.csv").write_text("x,y\n" + "\n".join(f"{a:.6f},{b:.6f}" for a, b in pts) + "\n")
    pre = last_json(cli_ok(["pretrain", "--data", "file:pts.csv", "--steps", "100", "--batch", "128", "--width", "32",
                            "--depth", "2", "--eval-every", "50", "--out", "pre.pt", "--json"], capsys))
    assert pre["steps"] == 100 and pre["command"] == "pretrain"
    assert [row["step"] for row in pre["history"] if "w2" in row] == [0, 50, 100]
    assert load_checkpoint(tmp_path / "pre.pt").data == "file:pts.csv"

    ft = last_json(cli_ok(["finetune", "--base", "pre.pt", "--data", "8gaussians", "--method", "gft", "--schedule",
                           "stages:10,0.5,5", "--coupling", "ot", "--steps", "200", "--batch", "128", "--eval-every", "100",
                           "--out", "ft.pt", "--json"], capsys))
    assert ft["steps"] == 200
    assert ft["train_seconds"] > 0 and ft["steps_per_second"] > 0
    assert math.isfinite(ft["final_loss"])
    history = ft["history"]
    assert history[0]["step"] == 0 and history[-1]["step"] == 200
    for row in history:
        assert {"step", "tau", "lambda", "loss"} <= row.keys()
        assert row["lambda"] == pytest.approx(row["tau"] / (1 + row["tau"]))
    # The stages schedule: tau_max 10 first, halving, and exactly 0 over the final 20 % of steps.
    assert history[0]["tau"] == 10.0
    assert {row["tau"] for row in history if row["step"] > 160} == {0.0}
    assert sorted({row["tau"] for row in history}, reverse=True) == [10.0, 5.0, 2.5, 1.25, 0.625, 0.0]
    # W2 exactly where evaluated (eval-every 100), and nowhere else.
    assert [row["step"] for row in history if "w2" in row] == [0, 100, 200]
    assert all(row["w2"] > 0 for row in history if "w2" in row)
    assert history[-1]["w2"] < history[0]["w2"]  # moved towards the new target

    out = last_json(cli_ok(["sample", "--model", "ft.pt", "--n", "300", "--solver", "euler", "--steps", "4", "--seed", "3",
                            "--out", "s.npy", "--trajectory", "traj.npy", "--json"], capsys))
    assert out["nfe"] == 4 and out["shape"] == [300, 2]
    samples, traj = np.load(tmp_path / "s.npy"), np.load(tmp_path / "traj.npy")
    assert samples.dtype == np.float32 and samples.shape == (300, 2)
    assert traj.dtype == np.float32 and traj.shape == (5, 300, 2)
    np.testing.assert_array_equal(traj[-1], samples)
    assert np.isfinite(samples).all()

    ev = last_json(cli_ok(["evaluate", "--model", "ft.pt", "--data", "8gaussians", "--n", "300", "--json"], capsys))
    for key in ("w2", "w2_null", "mmd", "energy", "energy_null", "path_length", "straightness", "nfe", "w2_by_steps"):
        assert key in ev, key
    assert set(ev["w2_by_steps"]) == {"1", "2", "4", "8"}
    assert all(math.isfinite(v) and v > 0 for v in ev["w2_by_steps"].values())
    assert ev["nfe"] > 0 and 0 < ev["w2_null"]["mean"] < ev["w2_by_steps"]["1"] and ev["w2_null"]["pairs"] == 20
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ft.pt", "pre.pt", "pts.csv", "s.npy", "traj.npy"]


def test_progress_lines_without_json(tmp_path, capsys):
    out = cli_ok(["pretrain", "--data", "moons", "--steps", "20", "--batch", "32", "--width", "16", "--depth", "1",
                  "--eval-every", "0", "--out", tmp_path / "m.pt"], capsys)
    lines = out.strip().splitlines()
    assert lines[0].split()[:2] == ["step", "0/20"] and any(line.startswith("step     20/20") for line in lines)
    assert "steps: 20" in lines and not any(line.startswith("{") for line in lines)


def _write_csv(path: Path, rows: list[list[str]]) -> None:
    path.write_text("\n".join(",".join(r) for r in rows) + "\n")


@pytest.fixture
def bad_input_dir(tmp_path: Path, monkeypatch) -> Path:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = MLPFlow(ModelConfig(width=16, depth=1))
    save_checkpoint(tmp_path / "base.pt", model, "moons", {"sigma": 0.0, "coupling": "independent"})
    good = [[f"{i * 0.1:.1f}", f"{(i * 7 % 5) * 0.3:.1f}"] for i in range(20)]
    _write_csv(tmp_path / "nan.csv", good[:10] + [["nan", "1.0"]] + good[10:])
    _write_csv(tmp_path / "three.csv", [r + ["0.5"] for r in good])
    _write_csv(tmp_path / "few.csv", good[:5])
    np.save(tmp_path / "points.npy", np.asarray(good, dtype=np.float32))
    monkeypatch.chdir(tmp_path)
    return tmp_path


BAD_INPUTS = {
    "unknown data name": (["pretrain", "--data", "nosuchdata", "--steps", "1", "--out", "o.pt"], "unknown data"),
    "malformed schedule": (["finetune", "--base", "base.pt", "--data", "moons", "--schedule", "stages:10", "--steps", "1", "--out", "o.pt"], "schedule"),
    "negative tau": (["finetune", "--base", "base.pt", "--data", "moons", "--schedule", "constant:-1", "--steps", "1", "--out", "o.pt"], "tau"),
    "missing file": (["pretrain", "--data", "file:missing.csv", "--steps", "1", "--out", "o.pt"], "not found"),
    "NaN rows": (["pretrain", "--data", "file:nan.csv", "--steps", "1", "--out", "o.pt"], "NaN"),
    "wrong shape": (["pretrain", "--data", "file:three.csv", "--steps", "1", "--out", "o.pt"], "N x 2"),
    "too few rows": (["pretrain", "--data", "file:few.csv", "--steps", "1", "--out", "o.pt"], "at least 8 rows"),
    "wrong kind of checkpoint": (["finetune", "--base", "points.npy", "--data", "moons", "--steps", "1", "--out", "o.pt"], "not a gft checkpoint"),
    "cuda without a GPU": (["sample", "--model", "base.pt", "--device", "cuda", "--n", "5", "--out", "o.npy"], "cuda"),
    "argparse: steps 0": (["pretrain", "--data", "moons", "--steps", "0", "--out", "o.pt"], "--steps"),
}


def check_one_clear_line(code: int, out: str, err: str, message: str) -> None:
    assert code != 0
    assert "Traceback" not in err and "Traceback" not in out
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("gft"), lines[0]
    assert message in lines[0], lines[0]


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_inputs_fail_with_one_clear_line(bad_input_dir, case, capsys):
    if case == "cuda without a GPU" and torch.cuda.is_available():
        pytest.skip("a GPU is present")
    args, message = BAD_INPUTS[case]
    before = set(bad_input_dir.iterdir())
    run = run_cli(args, capsys)
    check_one_clear_line(run.code, run.out, run.err, message)
    assert run.code == (2 if case.startswith("argparse") else 1)
    # Nothing written: no output, no temporary file.
    assert set(bad_input_dir.iterdir()) == before


def test_module_entry_point_exits_with_mains_code(tmp_path, monkeypatch, capsys):
    # What `python -m gft` runs (gft/__main__.py), in this process; the slow tests below use a real one.
    import runpy

    monkeypatch.setattr(sys, "argv", ["gft", "pretrain", "--data", "nosuchdata", "--steps", "1", "--out", str(tmp_path / "o.pt")])
    with pytest.raises(SystemExit) as exc:
        runpy.run_module("gft", run_name="__main__")
    assert exc.value.code == 1
    check_one_clear_line(1, *capsys.readouterr(), "unknown data")


# ---------------------------------------------------------------- the real `python -m gft`


def run_module(args: list[str], cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    return subprocess.run([sys.executable, "-m", "gft", *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL)


@pytest.mark.slow
def test_python_m_gft_trains_and_samples(tmp_path):
    proc = run_module(["pretrain", "--data", "moons", "--steps", "20", "--batch", "32", "--width", "16", "--depth", "1",
                       "--eval-every", "0", "--out", "m.pt", "--json"], tmp_path)
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
    assert last_json(proc.stdout)["steps"] == 20
    proc = run_module(["sample", "--model", "m.pt", "--n", "10", "--solver", "heun", "--steps", "3", "--out", "s.npy", "--json"],
                      tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert last_json(proc.stdout)["nfe"] == 6 and np.load(tmp_path / "s.npy").shape == (10, 2)


@pytest.mark.slow
@pytest.mark.parametrize("case", ["NaN rows", "argparse: steps 0"])
def test_python_m_gft_bad_input_is_one_line_on_stderr(bad_input_dir, case):
    args, message = BAD_INPUTS[case]
    before = set(bad_input_dir.iterdir())
    proc = run_module(args, bad_input_dir, timeout=120)
    check_one_clear_line(proc.returncode, proc.stdout, proc.stderr, message)
    assert proc.returncode == (2 if case.startswith("argparse") else 1)
    assert set(bad_input_dir.iterdir()) == before
