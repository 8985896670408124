"""Build the small pretrained 2D checkpoints the explorer ships in ``assets/`` (seeded, CPU).

    python scripts/make_assets.py            # every model in gft.tasks.shipped.SHIPPED_2D
    python scripts/make_assets.py moons      # only some

Each model: MLP width 128, depth 3, plain flow matching with a minibatch OT coupling (short, straight
paths: the property GFT is meant to keep), 3500 steps of batch 256, seed 0.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gft.core.checkpoints import save_checkpoint  # noqa: E402
from gft.core.training import TrainConfig  # noqa: E402
from gft.tasks.points import PointsTask  # noqa: E402
from gft.tasks.runs import Monitor, make_trainer  # noqa: E402
from gft.tasks.shipped import SHIPPED_2D, asset_path  # noqa: E402


def make(name: str, steps: int, seed: int) -> dict:
    config = TrainConfig(
        method="pretrain",
        steps=steps,
        batch=256,
        lr=1e-3,
        seed=seed,
        coupling="ot",
        device="cpu",
        callback_every=250,
    )
    # One W2 at the end (against the CLI's held-out draws), recorded in the checkpoint.
    trainer = make_trainer(PointsTask(name), config, monitor=Monitor(eval_every=steps, eval_points=1000))
    try:
        result = trainer.run()
    finally:
        trainer.close()
    w2 = result.history[-1].get("w2")
    extra = {"parent": None, "history": result.history, "w2": w2, "made_by": "scripts/make_assets.py"}
    save_checkpoint(asset_path(name), trainer.model, name, config.to_dict(), extra)
    return {"name": name, "w2": w2, "seconds": result.train_seconds}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", default=list(SHIPPED_2D), help=f"subset of {SHIPPED_2D}")
    parser.add_argument("--steps", type=int, default=3500)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    unknown = [n for n in args.names if n not in SHIPPED_2D]
    if unknown:
        parser.error(f"unknown model(s) {unknown}; choose from {SHIPPED_2D}")
    torch.set_num_threads(2)
    for name in args.names:
        start = time.perf_counter()
        info = make(name, args.steps, args.seed)
        size = asset_path(name).stat().st_size
        print(f"{name:>10}: W2 {info['w2']:.3f}  {time.perf_counter() - start:5.1f} s  {size / 1024:.0f} KB", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
