"""Measurements taken while a model trains, as :class:`gft.core.training.Hook` functions.

Each returns ``fn(model)``; its noise is drawn once per device from its own seed offset, so every
evaluation of a run sees the same draws and the curve moves only because the model does.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch

from gft.constants import EVAL_SEED_OFFSET, MAX_MEASURED_POINTS, SNAPSHOT_SEED_OFFSET
from gft.core.device import model_device
from gft.core.models import FlowModel
from gft.core.sampling import noise, sample_ode
from gft.evaluation.metrics import wasserstein2

HELDOUT_W2_STEPS = 50  # Euler steps of the training-time W2: cheap, and well below its noise at n = 1000


def _fixed_noise(n: int, shape: tuple[int, ...], seed: int) -> Callable[[torch.device], torch.Tensor]:
    cache: dict[torch.device, torch.Tensor] = {}

    def on(device: torch.device) -> torch.Tensor:
        if device not in cache:
            cache[device] = noise(n, shape, seed, device)
        return cache[device]

    return on


def heldout_w2(reference: torch.Tensor, n: int, seed: int) -> Callable[[FlowModel], float]:
    """W2 of ``n`` 50-step Euler samples against ``reference`` (held-out target draws)."""
    if not 2 <= n <= MAX_MEASURED_POINTS:
        raise ValueError(f"eval points must be in [2, {MAX_MEASURED_POINTS}], got {n}")
    draws = _fixed_noise(n, tuple(reference.shape[1:]), seed + EVAL_SEED_OFFSET)

    def w2(model: FlowModel) -> float:
        x = sample_ode(model, draws(model_device(model)), "euler", HELDOUT_W2_STEPS).x
        return wasserstein2(x, reference, n=n, seed=seed)

    return w2


def trajectories(n: int, shape: tuple[int, ...], seed: int, steps: int) -> Callable[[FlowModel], np.ndarray]:
    """Euler trajectories ``(steps + 1, n, *shape)`` (float32 numpy) of the particles an animation follows."""
    if not 1 <= n <= MAX_MEASURED_POINTS:
        raise ValueError(f"particles must be in [1, {MAX_MEASURED_POINTS}], got {n}")
    if not 1 <= steps <= 1000:
        raise ValueError(f"trajectory steps must be in [1, 1000], got {steps}")
    draws = _fixed_noise(n, shape, seed + SNAPSHOT_SEED_OFFSET)

    def follow(model: FlowModel) -> np.ndarray:
        res = sample_ode(model, draws(model_device(model)), "euler", steps, keep_trajectory=True)
        return res.trajectory.float().cpu().numpy()

    return follow
