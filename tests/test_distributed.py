"""Data-parallel training (gft/core/distributed.py): K ranks with local batch B take the steps one process
takes with batch K * B, and only rank 0 writes.

The quick tests check the sharded draws without a process group. The slow ones start two Gloo
processes on the CPU (as torchrun would: RANK, WORLD_SIZE, MASTER_ADDR/PORT) on a Gaussian target
given as a ``file:``, and compare their checkpoints with a single process at batch 2B.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import socket
import subprocess
import sys
import time
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


def _rank(rank: int, world: int, ports: list[int], data: str, root: str) -> None:
    """One process of the job: the CLI as torchrun would start it; its stdout goes to a file."""
    torch.set_num_threads(1)
    os.environ.update(RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(rank), MASTER_ADDR="127.0.0.1")
    # Each rank names its own folder: anything in rank1/ is a write rank 1 should not have made.
    # Every rank fine-tunes the base rank 0 wrote (as torchrun users pass one path to all ranks).
    base = Path(root) / "rank0" / "pre.pt"
    stdout, stderr = io.StringIO(), io.StringIO()
    try:
        for port, args in zip(ports, _commands(data, Path(root) / f"rank{rank}", B, base)):
            if args[0] == "finetune":
                deadline = time.monotonic() + 120
                while not base.exists() and time.monotonic() < deadline:  # rank 0 writes it after training
                    time.sleep(0.05)
            os.environ["MASTER_PORT"] = str(port)
            with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
                code = main(args)
            if code:
                raise SystemExit(f"rank {rank}: {args[0]} failed")
    finally:  # the test reads these when a rank fails: its one-line error is in stderr
        (Path(root) / f"stdout{rank}.txt").write_text(stdout.getvalue())
        (Path(root) / f"stderr{rank}.txt").write_text(stderr.getvalue())


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


@pytest.mark.slow
def test_two_gloo_ranks_match_one_process_at_twice_the_batch_and_only_rank_0_writes(tmp_path, capsys):
    data = _gaussian_file(tmp_path)
    (tmp_path / "rank0").mkdir()
    (tmp_path / "rank1").mkdir()
    ports = [_free_port(), _free_port()]
    try:
        torch.multiprocessing.spawn(_rank, args=(2, ports, data, str(tmp_path)), nprocs=2, join=True)
    except torch.multiprocessing.ProcessExitedException:
        errors = [(tmp_path / f"stderr{r}.txt") for r in (0, 1)]
        pytest.fail("a rank failed: " + " | ".join(f.read_text()[-500:] for f in errors if f.exists()))
    assert sorted(p.name for p in (tmp_path / "rank0").iterdir()) == ["gft.pt", "pre.pt"]
    assert list((tmp_path / "rank1").iterdir()) == []  # rank 1 wrote no checkpoint
    assert (tmp_path / "stdout1.txt").read_text() == ""  # and printed nothing
    ranked = [json.loads(line) for line in (tmp_path / "stdout0.txt").read_text().splitlines() if line.startswith("{")]
    assert [s["world_size"] for s in ranked] == [2, 2]

    single = _single(data, tmp_path / "single", capsys)
    for name in ("pre.pt", "gft.pt"):
        _assert_same_weights(tmp_path / "rank0" / name, tmp_path / "single" / name)
    for r, s in zip(ranked, single):  # the logged loss is the mean over ranks: the loss of the global batch
        np.testing.assert_allclose([h["loss"] for h in r["history"][1:]], [h["loss"] for h in s["history"][1:]], rtol=1e-4)


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("torchrun") is None and not (Path(sys.executable).parent / "torchrun").exists(), reason="torchrun not installed")
def test_torchrun_runs_the_cli_with_two_processes(tmp_path, capsys):
    data = _gaussian_file(tmp_path)
    (tmp_path / "ddp").mkdir()
    args = _commands(data, tmp_path / "ddp", B)[0]
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT))
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--master_port", str(_free_port()), "-m", "gft", *args]
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    assert len(lines) == 1 and json.loads(lines[0])["world_size"] == 2  # one report, from rank 0
    single = tmp_path / "single"
    single.mkdir()
    assert main(_commands(data, single, 2 * B)[0]) == 0
    _assert_same_weights(tmp_path / "ddp" / "pre.pt", single / "pre.pt")
