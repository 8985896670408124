"""Data-parallel training (gft/core/distributed.py): K ranks with local batch B take the steps one process
takes with batch K * B, and only rank 0 writes.

The quick tests check the sharded draws without a process group. The slow ones start two Gloo
processes on the CPU (as torchrun would: RANK, WORLD_SIZE, MASTER_ADDR/PORT) on a Gaussian target
given as a ``file:``, and compare their checkpoints with a single process at batch 2B.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from gft.cli import main
from gft.core.checkpoints import load_checkpoint
from gft.core.couplings import Coupling
from gft.core.distributed import Shard
from gft.core.objectives import GFTObjective
from gft.core.paths import GaussianPath

ROOT = Path(__file__).resolve().parents[1]
B = 16  # local batch of each rank
MEAN, COV = np.array([1.5, -0.5]), np.array([[1.0, 0.6], [0.6, 0.8]])


def test_shards_take_disjoint_rows_that_cover_the_global_batch():
    x = torch.arange(12).reshape(6, 2)
    parts = [Shard(r, 3).local(x) for r in range(3)]
    assert torch.equal(torch.cat(parts), x) and Shard(0, 3).global_size(2) == 6
    assert Shard(0, 1).is_main and not Shard(1, 2).is_main
    for rank, world in ((2, 2), (-1, 2), (0, 0)):
        with pytest.raises(ValueError):
            Shard(rank, world)


@pytest.mark.parametrize("sigma", [0.0, 0.5])
def test_sharded_path_draws_are_the_global_draws_split(sigma):
    objective = GFTObjective(GaussianPath(sigma), Coupling("independent"))
    x0, x1 = torch.randn(8, 2, generator=torch.Generator().manual_seed(1)), torch.randn(8, 2, generator=torch.Generator().manual_seed(2))
    whole = objective.path_sample(x0, x1, torch.Generator().manual_seed(3))
    for rank in range(2):
        shard = Shard(rank, 2)
        part = objective.path_sample(shard.local(x0), shard.local(x1), torch.Generator().manual_seed(3), shard)
        for name in ("x_t", "t", "velocity", "score"):
            torch.testing.assert_close(getattr(part, name), shard.local(getattr(whole, name)), rtol=0, atol=0)


# ---- two Gloo processes -----------------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _gaussian_file(tmp_path: Path) -> str:
    pts = np.random.default_rng(0).multivariate_normal(MEAN, COV, size=2000).astype(np.float32)
    np.save(tmp_path / "gauss.npy", pts)
    return f"file:{tmp_path / 'gauss.npy'}"


def _commands(data: str, out: Path, batch: int, base: Path | None = None) -> list[list[str]]:
    train = ["--steps", "12", "--batch", str(batch), "--sigma", "0.3", "--eval-every", "0", "--device", "cpu", "--json"]
    base = base or out / "pre.pt"
    return [
        ["pretrain", "--data", data, "--width", "32", "--depth", "2", *train, "--out", str(out / "pre.pt")],
        ["finetune", "--data", data, "--base", str(base), "--schedule", "linear:2", *train, "--out", str(out / "gft.pt")],
    ]


def _single(data: str, out: Path, capsys) -> list[dict]:
    out.mkdir()
    summaries = []
    for args in _commands(data, out, 2 * B):
        assert main(args) == 0, capsys.readouterr().err
        summaries.append(json.loads(capsys.readouterr().out.strip().splitlines()[-1]))
    return summaries


def _assert_same_weights(a: Path, b: Path) -> None:
    sa, sb = load_checkpoint(a).model.state_dict(), load_checkpoint(b).model.state_dict()
    assert sa.keys() == sb.keys()
    for k in sa:
        torch.testing.assert_close(sa[k], sb[k], rtol=1e-4, atol=2e-5, msg=k)


TORCHRUN_MISSING = shutil.which("torchrun") is None and not (Path(sys.executable).parent / "torchrun").exists()


def _torchrun(args: list[str], port: int) -> dict:
    """``torchrun --nproc_per_node=2 -m gft ARGS`` (Gloo on the CPU); the one JSON report it printed."""
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT))
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--master_port", str(port), "-m", "gft", *args]
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    # A rank's own last words ("terminate called ...") come before torchrun's long summary: keep both.
    said = [line for line in proc.stderr.splitlines() if "terminate" in line or "Error" in line or "error:" in line]
    assert proc.returncode == 0, "\n".join(said[-10:]) + "\n...\n" + proc.stderr[-1500:]
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    assert len(lines) == 1  # one report, from rank 0 (rank 1 prints nothing)
    return json.loads(lines[0])


@pytest.mark.slow
@pytest.mark.skipif(TORCHRUN_MISSING, reason="torchrun not installed")
def test_two_gloo_ranks_match_one_process_at_twice_the_batch_and_only_rank_0_writes(tmp_path, capsys):
    # Real processes started by torchrun, as users start them (an in-process spawn re-runs the parent's
    # __main__, which inside this suite can be a Streamlit page).
    data = _gaussian_file(tmp_path)
    (tmp_path / "ddp").mkdir()
    ranked = [_torchrun(args, _free_port()) for args in _commands(data, tmp_path / "ddp", B)]
    assert [s["world_size"] for s in ranked] == [2, 2]
    assert sorted(p.name for p in (tmp_path / "ddp").iterdir()) == ["gft.pt", "pre.pt"]  # no stray or temp files
    single = _single(data, tmp_path / "single", capsys)
    for name in ("pre.pt", "gft.pt"):
        _assert_same_weights(tmp_path / "ddp" / name, tmp_path / "single" / name)
    for r, s in zip(ranked, single):  # the logged loss is the mean over ranks: the loss of the global batch
        np.testing.assert_allclose([h["loss"] for h in r["history"][1:]], [h["loss"] for h in s["history"][1:]], rtol=1e-4)
