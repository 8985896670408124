"""Steps per second of data-parallel training for K = 1 and K = 2 processes (docs/scaling.md's table).

    python scripts/time_ranks.py [--steps 200] [--ranks 1 2] [--out scaling.json]

Each case runs the CLI (``python -m gft pretrain``; under ``torchrun`` for K > 1) on a synthetic target
written to a temporary folder, with the machine's cores split evenly between the processes
(OMP_NUM_THREADS), and reads rank 0's JSON: steps/s counts training steps only (no start-up, no
checkpoint). K processes at local batch B take the steps of one process at batch K * B, so the table
also gives samples per second = steps/s x K x B.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
# name: (data file maker, extra CLI arguments, local batch, share of --steps)
CASES = {
    "2D Gaussian, MLP 128x3, independent": ("gauss", ["--coupling", "independent"], 256, 1.0),
    "2D Gaussian, MLP 128x3, exact OT": ("gauss", ["--coupling", "ot"], 256, 1.0),
    "28x28 shapes, convnet width 16": ("shapes", ["--width", "16"], 32, 0.25),
}


def _write_data(kind: str, folder: Path) -> str:
    rng = np.random.default_rng(0)
    if kind == "gauss":
        np.save(folder / "gauss.npy", rng.normal(size=(4000, 2)).astype(np.float32))
        return f"file:{folder / 'gauss.npy'}"
    images = np.zeros((400, 28, 28), np.uint8)
    for i in range(len(images)):  # bright squares of random size and place
        r, (y, x) = rng.integers(3, 9), rng.integers(9, 19, size=2)
        images[i, y - r : y + r, x - r : x + r] = 255
    np.save(folder / "shapes.npy", images)
    return f"images:{folder / 'shapes.npy'}"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_case(data: str, extra: list[str], batch: int, ranks: int, steps: int, folder: Path, threads: int | None = None) -> dict:
    threads = threads or max(1, (os.cpu_count() or 1) // ranks)
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), PYTHONPATH=str(ROOT))
    launcher = [sys.executable, "-m", "gft"]
    if ranks > 1:
        launcher = [sys.executable, "-m", "torch.distributed.run", f"--nproc_per_node={ranks}", "--master_port", str(_free_port()), "-m", "gft"]
    args = ["pretrain", "--data", data, "--steps", str(steps), "--batch", str(batch), "--eval-every", "0", "--device", "cpu",
            "--out", str(folder / f"k{ranks}.pt"), "--json", *extra]  # fmt: skip
    proc = subprocess.run(launcher + args, env=env, capture_output=True, text=True, cwd=ROOT)
    if proc.returncode:
        raise RuntimeError(f"K={ranks} failed: {proc.stderr.strip().splitlines()[-1:]}")
    summary = json.loads([line for line in proc.stdout.splitlines() if line.startswith("{")][-1])
    sps = summary["steps_per_second"]
    return {"ranks": ranks, "threads_per_rank": threads, "local_batch": batch, "steps_per_second": sps,
            "samples_per_second": sps * batch * ranks, "ot_seconds_per_batch": summary["ot_seconds_per_batch"]}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--ranks", type=int, nargs="+", default=[1, 2])
    p.add_argument("--threads", type=int, default=None, help="threads per process (default: the cores split evenly)")
    p.add_argument("--repeats", type=int, default=3, help="runs per case; the table shows the median (shared machines are noisy)")
    p.add_argument("--out", default=None, help="also write the rows as JSON here")
    args = p.parse_args(argv)
    if args.steps < 4 or args.repeats < 1 or any(k < 1 for k in args.ranks):
        p.error("--steps must be >= 4, --repeats and --ranks >= 1")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for name, (kind, extra, batch, share) in CASES.items():
            data = _write_data(kind, folder)
            for k in args.ranks:
                runs = [run_case(data, extra, batch, k, max(2, int(args.steps * share)), folder, args.threads) for _ in range(args.repeats)]
                row = {"case": name, **sorted(runs, key=lambda r: r["steps_per_second"])[len(runs) // 2],
                       "all_steps_per_second": [r["steps_per_second"] for r in runs]}  # fmt: skip
                rows.append(row)
                print(f"{name:40s} K={k} x {row['threads_per_rank']} thread(s)  {row['steps_per_second']:7.1f} steps/s  {row['samples_per_second']:9.0f} samples/s", flush=True)
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    print(f"load average after the runs (1, 5, 15 min): {load}")
    if args.out:
        Path(args.out).write_text(json.dumps({"cpu_count": os.cpu_count(), "load_after": load, "rows": rows}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
