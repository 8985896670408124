"""Measurements taken while a model trains, as :class:`gft.core.training.Hook` functions.

Each returns ``fn(model)``; its noise is drawn once per device from its own seed offset, so every
evaluation of a run sees the same draws and the curve moves only because the model does.
"""

from __future__ import annotations

import copy
from typing import Callable

import numpy as np
import torch

from gft.constants import EVAL_SEED_OFFSET, MAX_MEASURED_POINTS, SNAPSHOT_SEED_OFFSET
from gft.core.device import model_device
from gft.core.models import FlowModel
from gft.core.sampling import noise, sample_ode
from gft.evaluation.metrics import energy_distance_unbiased, wasserstein2

HELDOUT_W2_STEPS = 50  # Euler steps of the training-time W2: cheap, and well below its noise at n = 1000


def _fixed_noise(n: int, shape: tuple[int, ...], seed: int) -> Callable[[torch.device], torch.Tensor]:
    cache: dict[torch.device, torch.Tensor] = {}

    def on(device: torch.device) -> torch.Tensor:
        if device not in cache:
            cache[device] = noise(n, shape, seed, device)
        return cache[device]

    return on


def heldout_w2(reference: torch.Tensor, n: int, seed: int, steps: int = HELDOUT_W2_STEPS) -> Callable[[FlowModel], float]:
    """W2 of ``n`` ``steps``-step Euler samples against ``reference`` (held-out target draws)."""
    if not 2 <= n <= MAX_MEASURED_POINTS:
        raise ValueError(f"eval points must be in [2, {MAX_MEASURED_POINTS}], got {n}")
    if not isinstance(steps, int) or not 1 <= steps <= 1000:
        raise ValueError(f"steps must be an integer in [1, 1000], got {steps!r}")
    draws = _fixed_noise(n, tuple(reference.shape[1:]), seed + EVAL_SEED_OFFSET)

    def w2(model: FlowModel) -> float:
        x = sample_ode(model, draws(model_device(model)), "euler", steps).x
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


class BestWeights:
    """A validation hook: the unbiased energy distance of ``n`` 50-step Euler samples to held-out
    validation points, keeping a copy of the weights whenever it is the lowest so far.

    Early stopping for any method, and for GFT the way to keep a checkpoint from inside the anneal
    (while lambda > 0) when that generalises better than the tau = 0 end.
    """

    def __init__(self, validation: torch.Tensor, n: int, seed: int) -> None:
        if len(validation) < 2:
            raise ValueError(f"the validation set needs at least 2 samples, got {len(validation)}")
        if not 2 <= n <= MAX_MEASURED_POINTS:
            raise ValueError(f"validation samples must be in [2, {MAX_MEASURED_POINTS}], got {n}")
        self.validation = validation
        self._draws = _fixed_noise(n, tuple(validation.shape[1:]), seed + EVAL_SEED_OFFSET)
        self.best_energy = float("inf")
        self.best_state: dict[str, torch.Tensor] | None = None
        self.calls = 0
        self.best_call = -1

    def __call__(self, model: FlowModel) -> float:
        x = sample_ode(model, self._draws(model_device(model)), "euler", HELDOUT_W2_STEPS).x
        energy = energy_distance_unbiased(x, self.validation)
        if energy < self.best_energy:
            self.best_energy, self.best_call = energy, self.calls
            self.best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        self.calls += 1
        return energy

    def best_model(self, like: FlowModel) -> FlowModel:
        """A copy of ``like`` holding the best weights seen (``like`` itself is not changed)."""
        if self.best_state is None:
            raise ValueError("no validation has run yet: nothing to keep")
        best = copy.deepcopy(like)
        best.load_state_dict(self.best_state)
        return best
