"""The CUDA path, on a real GPU: skipped where torch sees none (this suite's CPU machines).

Run on a GPU machine with ``pytest tests/test_gpu.py`` (or ``scripts/gpu_check.sh``). The checks are
the CPU suite's, moved to the device: the same weights sample the same points on both devices, a
seeded GFT run on CUDA is reproducible and learns the new digits, checkpoints cross devices, and the
CLI trains on ``--device cuda`` with no code change.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from gft.core.checkpoints import checkpoint_bytes, checkpoint_from_bytes
from gft.core.models import ModelConfig, build_seeded
from gft.core.sampling import noise, sample_ode
from gft.core.training import TrainConfig, Trainer
from gft.data import sample_distribution
from gft.data.digits import DATA_SHAPE
from gft.evaluation.images import evaluate_images
from gft.evaluation.metrics import wasserstein2
from gft.tasks.digits import DigitsTask

DIGITS = DigitsTask("digits:0-9")  # only its default convnet is read

# GFT_TEST_DEVICE=cpu runs the same checks on the CPU: how this module's logic is checked without a GPU.
DEVICE = os.environ.get("GFT_TEST_DEVICE", "cuda")
pytestmark = pytest.mark.skipif(DEVICE == "cuda" and not torch.cuda.is_available(), reason="needs a CUDA GPU")

ROOT = Path(__file__).resolve().parents[1]


def _params(model: torch.nn.Module) -> torch.Tensor:
    return torch.cat([p.detach().flatten().cpu() for p in model.parameters()])


def test_the_same_weights_sample_the_same_points_on_cpu_and_gpu():
    model = build_seeded(DIGITS.model_config(), 0)
    x0 = noise(64, DATA_SHAPE, 3)  # drawn on the CPU for either device
    on_cpu = sample_ode(model, x0, "euler", 20).x
    on_gpu = sample_ode(model.to(DEVICE), x0.to(DEVICE), "euler", 20).x
    assert on_gpu.device.type == DEVICE
    assert torch.allclose(on_gpu.cpu(), on_cpu, atol=1e-3)


@pytest.mark.parametrize("coupling", ["independent", "ot"])
def test_seeded_gft_on_the_gpu_is_reproducible_and_stays_on_the_gpu(coupling):
    train_x = DigitsTask("digits:5-9").pool(0)
    pretrained = build_seeded(DIGITS.model_config(), 1)

    def run() -> tuple[torch.Tensor, list]:
        config = TrainConfig(method="gft", steps=30, batch=64, seed=0, coupling=coupling, callback_every=10, device=DEVICE)
        trainer = Trainer(train_x, config, pretrained=pretrained)
        result = trainer.run()
        assert all(p.device.type == DEVICE for p in trainer.model.parameters())
        assert all(p.device.type == "cpu" for p in pretrained.parameters())  # the caller's model stays put
        return _params(trainer.model), [row["loss"] for row in result.history]

    (p1, h1), (p2, h2) = run(), run()
    # cuDNN may pick non-deterministic kernels; the runs must still agree to float32 noise.
    assert torch.allclose(p1, p2, atol=1e-4) and h1 == pytest.approx(h2, rel=1e-3)


def test_gft_on_the_gpu_moves_digits_0_4_to_5_9():
    config = TrainConfig(method="pretrain", steps=800, batch=128, lr=2e-3, seed=0, device=DEVICE)
    trainer = Trainer(DigitsTask("digits:0-4").pool(0), config, init=DIGITS.model_config())
    trainer.run()
    pretrained = trainer.model
    config = TrainConfig(method="gft", steps=600, batch=128, lr=2e-3, seed=0, schedule="stages:10,0.5,3", device=DEVICE)
    trainer = Trainer(DigitsTask("digits:5-9").pool(0), config, pretrained=pretrained)
    trainer.run()
    before = evaluate_images(pretrained, "digits:5-9", n=300, seed=0)
    after = evaluate_images(trainer.model, "digits:5-9", n=300, seed=0)
    assert before.target_fraction < 0.3 and after.target_fraction > 0.7
    assert after.fd < 0.5 * before.fd


def test_a_gpu_checkpoint_loads_on_the_cpu_and_samples_the_same():
    model = build_seeded(DIGITS.model_config(), 2).to(DEVICE)
    payload = checkpoint_bytes(model, "digits:5-9", TrainConfig(device=DEVICE).to_dict(), {})
    loaded = checkpoint_from_bytes(payload, "gpu.pt").model
    assert all(p.device.type == "cpu" for p in loaded.parameters())
    x0 = noise(32, DATA_SHAPE, 0)
    assert torch.allclose(sample_ode(loaded, x0, "euler", 10).x, sample_ode(model, x0.to(DEVICE), "euler", 10).x.cpu(), atol=1e-3)


def test_2d_ot_training_on_the_gpu_fits_the_target():
    target = sample_distribution("8gaussians", 20_000, 0)
    config = TrainConfig(method="pretrain", steps=1500, batch=256, seed=0, coupling="ot", device=DEVICE)
    trainer = Trainer(target, config, init=ModelConfig())
    trainer.run()
    samples = sample_ode(trainer.model, noise(1000, (2,), 5, DEVICE), "heun", 20).x
    assert wasserstein2(samples.cpu(), sample_distribution("8gaussians", 1000, 9), n=1000) < 0.6


def test_cli_trains_and_samples_digits_on_cuda(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(ROOT))

    def cli(*args: str) -> dict:
        proc = subprocess.run([sys.executable, "-m", "gft", *args, "--json"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, proc.stderr
        return json.loads(proc.stdout.strip().splitlines()[-1])

    cli("pretrain", "--data", "digits:0-4", "--steps", "100", "--device", DEVICE, "--eval-every", "0", "--out", "pre.pt")
    ft = cli("finetune", "--base", "pre.pt", "--data", "digits:5-9", "--coupling", "ot", "--steps", "100", "--device", DEVICE,
             "--eval-every", "0", "--out", "ft.pt")
    assert ft["steps"] == 100 and ft["steps_per_second"] > 0
    cli("sample", "--model", "ft.pt", "--n", "16", "--solver", "euler", "--steps", "10", "--device", DEVICE, "--out", "s.npy")
    samples = np.load(tmp_path / "s.npy")
    assert samples.shape == (16, 8, 8) and samples.dtype == np.float32
    assert samples.min() >= 0.0 and samples.max() <= 16.0
