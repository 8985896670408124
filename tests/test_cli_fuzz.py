"""Malformed files, arguments and checkpoints through the command line: every one is refused with exit
code != 0, exactly one stderr line starting with "gft", no traceback and nothing written at --out.

In-process through ``gft.cli.main`` (quick tier); a few real ``python -m gft`` subprocesses are slow.
"""

from __future__ import annotations

import io
import json
import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from cli_inprocess import assert_one_line_refusal, rewrite_checkpoint, run_main

from gft.core.checkpoints import save_checkpoint
from gft.core.models import MLPFlow, ModelConfig

ROOT = Path(__file__).resolve().parents[1]


def _npy_bytes(arr) -> bytes:
    buf = io.BytesIO()
    np.save(buf, arr, allow_pickle=True)
    return buf.getvalue()


def _points(n: int = 40, cols: int = 2) -> np.ndarray:
    return np.random.default_rng(0).normal(size=(n, cols))


def _with(arr: np.ndarray, row: int, value: float) -> np.ndarray:
    arr = arr.copy()
    arr[row, 0] = value
    return arr


def _csv(arr: np.ndarray) -> bytes:
    return ("x,y\n" + "\n".join(",".join(f"{v:.6g}" for v in row) for row in arr) + "\n").encode()


# name -> file contents; each becomes --data file:NAME
BAD_DATA = {
    "empty.npy": b"",
    "empty.csv": b"",
    "header_only.csv": b"x,y\n",
    "random.npy": np.random.default_rng(1).bytes(300),
    "random.csv": np.random.default_rng(2).bytes(300),
    "truncated.npy": _npy_bytes(_points())[:100],
    "complex.npy": _npy_bytes(_points().astype(np.complex128) * 1j),
    "three_columns.npy": _npy_bytes(_points(cols=3)),
    "three_columns.csv": _csv(_points(cols=3)),
    "one_column.csv": _csv(_points(cols=1)),
    "nan.npy": _npy_bytes(_with(_points(), 3, np.nan)),
    "inf.csv": _csv(_with(_points(), 3, np.inf)),
    "huge.csv": _csv(_with(_points(), 3, 1e300)),
    "scale_1e6.npy": _npy_bytes(_points() * 1e6),
    "objects.npy": _npy_bytes(np.array([{"a": 1}] * 20, dtype=object)),
    "strings.npy": _npy_bytes(np.array([["a", "b"]] * 20)),
    "few_rows.csv": _csv(_points(n=3)),
    "same_point.npy": _npy_bytes(np.ones((20, 2))),
    "ragged.csv": b"1,2\n3,4\n5\n",
    "text_line.csv": b"1,2\n3,4\nfive,6\n",
    "points.txt": _csv(_points()),
    "scalar.npy": _npy_bytes(np.float64(3.0)),
}

BAD_ARGS = {
    "seed too large": ["pretrain", "--data", "moons", "--seed", str(2**70), "--out", "o.pt"],
    "negative seed": ["pretrain", "--data", "moons", "--seed", "-1", "--out", "o.pt"],
    "negative eval-every": ["pretrain", "--data", "moons", "--eval-every", "-3", "--out", "o.pt"],
    "steps zero": ["pretrain", "--data", "moons", "--steps", "0", "--out", "o.pt"],
    "lr nan": ["pretrain", "--data", "moons", "--lr", "nan", "--out", "o.pt"],
    "lr above one": ["pretrain", "--data", "moons", "--lr", "2", "--steps", "1", "--out", "o.pt"],
    "unknown data": ["pretrain", "--data", "nosuch", "--steps", "1", "--out", "o.pt"],
    "bad schedule": ["finetune", "--base", "good.pt", "--data", "moons", "--schedule", "stages:x", "--steps", "1", "--out", "o.pt"],
    "tiny sinkhorn reg": ["pretrain", "--data", "moons", "--coupling", "sinkhorn", "--sinkhorn-reg", "1e-9", "--steps", "2", "--eval-every", "0", "--out", "o.pt"],
    "evaluate n huge": ["evaluate", "--model", "good.pt", "--data", "moons", "--n", "100000"],
    "out is a directory": ["pretrain", "--data", "moons", "--steps", "1", "--out", "adir"],
    "out under /proc": ["pretrain", "--data", "moons", "--steps", "1", "--out", "/proc/x.pt"],
    "out under a file": ["pretrain", "--data", "moons", "--steps", "1", "--out", "afile/o.pt"],
    "sample trajectory not npy": ["sample", "--model", "good.pt", "--n", "5", "--out", "o.npy", "--trajectory", "t.txt"],
    "sample out not npy": ["sample", "--model", "good.pt", "--n", "5", "--out", "o.pt"],
    "sample same outputs": ["sample", "--model", "good.pt", "--n", "5", "--out", "o.npy", "--trajectory", "o.npy"],
    "limit beyond the pool": ["pretrain", "--data", "file:good.csv", "--limit", "1000", "--steps", "1", "--out", "o.pt"],
    "digits in 2D base": ["finetune", "--base", "good.pt", "--data", "digits:0-4", "--steps", "1", "--out", "o.pt"],
}


def _good_checkpoint(path: Path) -> Path:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = MLPFlow(ModelConfig(width=16, depth=1))
    save_checkpoint(path, model, "moons", {"sigma": 0.0, "coupling": "independent", "seed": 0})
    return path


def _first_tensor(state) -> torch.Tensor:
    return next(iter(state.values())).view(-1)


def _flip_tensor_bytes(src: Path, dst: Path) -> None:
    payload = bytearray(src.read_bytes())
    weight = _first_tensor(torch.load(src, weights_only=True)["state_dict"]).numpy().tobytes()
    at = payload.find(weight) + 4
    payload[at : at + 16] = bytes(b ^ 0x01 for b in payload[at : at + 16])
    dst.write_bytes(bytes(payload))


def _bad_checkpoints(folder: Path, good: Path) -> list[str]:
    (folder / "truncated.pt").write_bytes(good.read_bytes()[:300])
    (folder / "raw_pickle.pt").write_bytes(pickle.dumps({"meta": "{}", "state_dict": {}}))
    (folder / "random.pt").write_bytes(np.random.default_rng(3).bytes(2048))
    (folder / "empty.pt").write_bytes(b"")
    _flip_tensor_bytes(good, folder / "flipped.pt")
    rewrite_checkpoint(good, folder / "inf_weight.pt", state=lambda s: _first_tensor(s)[0].fill_(float("inf")))
    rewrite_checkpoint(good, folder / "nan_weight.pt", state=lambda s: _first_tensor(s)[1].fill_(float("nan")))
    rewrite_checkpoint(good, folder / "meta_list.pt", meta=lambda m: "[1]")
    rewrite_checkpoint(good, folder / "meta_not_json.pt", meta=lambda m: "{not json")
    rewrite_checkpoint(good, folder / "data_int.pt", meta=lambda m: json.dumps(dict(m, data=12345)))
    rewrite_checkpoint(good, folder / "train_str.pt", meta=lambda m: json.dumps(dict(m, train="x")))
    rewrite_checkpoint(good, folder / "extra_list.pt", meta=lambda m: json.dumps(dict(m, extra=[])))
    rewrite_checkpoint(good, folder / "version_9.pt", meta=lambda m: json.dumps(dict(m, format_version=9)))
    rewrite_checkpoint(good, folder / "no_hash.pt", meta=lambda m: json.dumps({k: v for k, v in m.items() if k != "sha256"}))
    rewrite_checkpoint(good, folder / "edited_data.pt", meta=lambda m: json.dumps(dict(m, data="circles")))
    return sorted(p.name for p in folder.glob("*.pt") if p.name != good.name)


@pytest.fixture(scope="module")
def fuzz_dir(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("fuzz")
    for name, content in BAD_DATA.items():
        (folder / name).write_bytes(content)
    (folder / "good.csv").write_bytes(_csv(_points()))
    (folder / "adir").mkdir()
    (folder / "afile").write_text("x")
    _bad_checkpoints(folder, _good_checkpoint(folder / "good.pt"))
    return folder


BAD_CHECKPOINTS = [
    "truncated.pt", "raw_pickle.pt", "random.pt", "empty.pt", "flipped.pt", "inf_weight.pt", "nan_weight.pt", "meta_list.pt",
    "meta_not_json.pt", "data_int.pt", "train_str.pt", "extra_list.pt", "version_9.pt", "no_hash.pt", "edited_data.pt",
]
CASES = (
    [(f"data {n}", ["pretrain", "--data", f"file:{n}", "--steps", "1", "--out", "o.pt"], n) for n in BAD_DATA]
    + [(f"args {k}", v, None) for k, v in BAD_ARGS.items()]
    + [(f"sample {n}", ["sample", "--model", n, "--n", "5", "--solver", "euler", "--steps", "2", "--out", "o.npy"], n) for n in BAD_CHECKPOINTS]
    + [(f"finetune {n}", ["finetune", "--base", n, "--data", "moons", "--steps", "1", "--out", "o.pt"], n) for n in BAD_CHECKPOINTS[:6]]
    + [(f"evaluate {n}", ["evaluate", "--model", n, "--data", "moons", "--n", "20"], n) for n in BAD_CHECKPOINTS[6:]]
)


def test_there_are_at_least_thirty_cases():
    assert len(CASES) >= 30


@pytest.mark.parametrize("name, argv, names", CASES, ids=[c[0] for c in CASES])
def test_malformed_input_is_one_line_and_writes_nothing(fuzz_dir, monkeypatch, capsys, name, argv, names):
    monkeypatch.chdir(fuzz_dir)
    before = {p.name: p.stat().st_mtime_ns for p in fuzz_dir.iterdir()}
    run = run_main(argv, capsys)
    line = assert_one_line_refusal(run)
    if names is not None:
        assert names in line, line  # the refusal names the file it is about
    assert {p.name: p.stat().st_mtime_ns for p in fuzz_dir.iterdir()} == before  # no output, no temp file


SUBPROCESS_CASES = ["data random.npy", "sample inf_weight.pt", "args seed too large"]


@pytest.mark.slow
@pytest.mark.parametrize("case", SUBPROCESS_CASES)
def test_a_real_process_refuses_in_one_line(fuzz_dir, case):
    argv = next(c[1] for c in CASES if c[0] == case)
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.run([sys.executable, "-m", "gft", *argv], cwd=fuzz_dir, capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("gft"), proc.stderr
