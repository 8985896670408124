"""Training steps per second of the default models on every device here (CPU, and CUDA when present).

    python scripts/time_devices.py                   # prints a table and one JSON line
    python scripts/time_devices.py --out times.json  # also writes the JSON (atomically)

Times ``gft.core.training.Trainer`` itself (prefetch, clipping and bookkeeping included) after a warm-up:
digits pretraining and GFT fine-tuning (independent and exact-OT couplings) with the default convnet at
batch 128, and 2D OT training of the default MLP at batch 256; then sampling 2,000 trajectories of
100 Euler steps. The README's CPU-vs-GPU table comes from this script.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.exp_speed import SAMPLING_N, sampling_seconds, time_trainer  # noqa: E402
from gft.constants import POINTS_POOL  # noqa: E402
from gft.core.checkpoints import atomic_write_bytes  # noqa: E402
from gft.core.device import describe_device  # noqa: E402
from gft.core.models import ModelConfig, build_seeded  # noqa: E402
from gft.core.sampling import noise  # noqa: E402
from gft.core.training import TrainConfig, Trainer  # noqa: E402
from gft.data import sample_distribution  # noqa: E402
from gft.tasks.digits import DigitsTask  # noqa: E402

WARMUP = 20


def steps_per_second(model_config: ModelConfig, target: torch.Tensor, config: TrainConfig, steps: int) -> float:
    if config.method == "gft":
        trainer = Trainer(target, config, pretrained=build_seeded(model_config, 1))
    else:
        trainer = Trainer(target, config, init=model_config)
    try:
        return time_trainer(trainer, steps, torch.device(config.device), warmup=WARMUP)
    finally:
        trainer.close()


def cases(steps: int) -> list[tuple[str, ModelConfig, torch.Tensor, dict]]:
    digits = DigitsTask("digits:5-9")
    digits_train, convnet, batch = digits.pool(0), digits.model_config(), digits.default_batch
    toy = sample_distribution("8gaussians", POINTS_POOL, 0)
    mlp = ModelConfig()
    base = dict(steps=WARMUP + steps, callback_every=WARMUP + steps, schedule="stages:10,0.5,5")
    return [
        ("digits pretrain, independent, batch 128", convnet, digits_train, dict(base, method="pretrain", batch=batch)),
        ("digits GFT, independent, batch 128", convnet, digits_train, dict(base, method="gft", batch=batch)),
        ("digits GFT, exact OT, batch 128", convnet, digits_train, dict(base, method="gft", batch=batch, coupling="ot")),
        ("2D pretrain, independent, batch 256", mlp, toy, dict(base, method="pretrain", batch=256)),
        ("2D GFT, exact OT, batch 256", mlp, toy, dict(base, method="gft", batch=256, coupling="ot")),
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=200, help="timed steps per case (after 20 warm-up steps)")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="torch CPU threads")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    if args.steps < 1 or args.threads < 1:
        parser.error("--steps and --threads must be >= 1")
    torch.set_num_threads(args.threads)
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    rows = []
    for name, model_config, target, fields in cases(args.steps):
        for device in devices:
            sps = steps_per_second(model_config, target, TrainConfig(device=device, **fields), args.steps)
            rows.append({"case": name, "device": device, "steps_per_second": sps})
            print(f"{name:42s} {device:5s} {sps:8.1f} steps/s", flush=True)
    for device in devices:
        model = build_seeded(ModelConfig(), 0).to(device)
        seconds = sampling_seconds(model, noise(SAMPLING_N, (2,), 0, device), repeats=5)
        rows.append({"case": "sampling 2000 x 100 Euler steps", "device": device, "seconds": seconds})
        print(f"{'sampling 2000 x 100 Euler steps':42s} {device:5s} {seconds:8.3f} s", flush=True)
    report = {
        "devices": {d: describe_device(torch.device(d)) for d in devices},
        "torch_threads": args.threads,
        "cpu_count": os.cpu_count(),
        "load_average": os.getloadavg()[0],
        "rows": rows,
    }
    if args.out is not None:
        atomic_write_bytes(args.out, json.dumps(report, indent=2).encode())
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
