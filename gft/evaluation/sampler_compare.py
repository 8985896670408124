"""One trained 2D model, two samplers from the same noise: the adaptive ODE (dopri5) as the reference and
a chosen one (Euler or midpoint with k steps, dopri5, or the SDE with diffusion g), with their samples,
a few trajectories, the real NFE and their distances to the target. What the app's sampling panel shows.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch

from gft.constants import SAMPLER_SEED_OFFSET
from gft.core.device import model_device
from gft.core.models import FlowModel
from gft.core.sampling import MAX_STEPS, noise, sample_ode, sample_sde
from gft.evaluation.metrics import energy_distance_unbiased, wasserstein2

SAMPLERS = ("euler", "midpoint", "dopri5", "sde")
REFERENCE_GRID = 20  # output times of the dopri5 reference's trajectory (its own steps are adaptive)
MAX_DIFFUSION = 10.0


@dataclass(frozen=True)
class SamplerSpec:
    """A sampler of the panel: ``solver`` in :data:`SAMPLERS`; ``steps`` for the fixed-step ones and the SDE."""

    solver: str = "euler"
    steps: int = 10
    diffusion: float = 0.0  # the SDE's g
    score: str = "head"  # the SDE's score: the model's head, or the identity (sigma = 0, independent coupling)

    def __post_init__(self) -> None:
        if self.solver not in SAMPLERS:
            raise ValueError(f"solver must be one of {SAMPLERS}, got {self.solver!r}")
        if not isinstance(self.steps, int) or not 1 <= self.steps <= MAX_STEPS:
            raise ValueError(f"steps must be an integer in [1, {MAX_STEPS}], got {self.steps!r}")
        if not 0 <= self.diffusion <= MAX_DIFFUSION:
            raise ValueError(f"diffusion g must be in [0, {MAX_DIFFUSION:g}], got {self.diffusion}")
        if self.score not in ("head", "identity"):
            raise ValueError(f"score must be 'head' or 'identity', got {self.score!r}")

    @property
    def label(self) -> str:
        if self.solver == "dopri5":
            return "dopri5 (adaptive)"
        if self.solver == "sde":
            return f"SDE, {self.steps} steps, g = {self.diffusion:g}"
        return f"{self.solver}, {self.steps} steps"


REFERENCE = SamplerSpec("dopri5")


@dataclass(frozen=True)
class SamplerRun:
    """What one sampler made: samples (n, 2), ``paths`` (K + 1, n_paths, 2), the real NFE and the distances."""

    spec: SamplerSpec
    samples: np.ndarray
    paths: np.ndarray
    nfe: int
    w2: float
    energy: float
    seconds: float

    def row(self) -> dict:
        return {"sampler": self.spec.label, "NFE": self.nfe, "W2 to target": self.w2, "energy distance": self.energy,
                "seconds": self.seconds}


def _paths_grid(steps: int) -> int:
    return max(1, min(steps, 50))


def run_sampler(
    model: FlowModel, spec: SamplerSpec, reference: np.ndarray, n: int = 1000, seed: int = 0, paths: int = 60,
    training: dict | None = None,
) -> SamplerRun:
    """Sample ``n`` points with ``spec`` from the noise of ``seed`` and measure them against ``reference``.

    ``training`` (the run's ``sigma`` and ``coupling``) lets the SDE use the score identity, which
    :func:`gft.core.sampling.sample_sde` refuses unless it is exact.
    """
    if not 2 <= n <= 20_000:
        raise ValueError(f"n must be in [2, 20000], got {n}")
    if tuple(model.config.data_shape) != (2,):
        raise ValueError(f"the sampling panel draws 2D models; this one makes {tuple(model.config.data_shape)}")
    device = model_device(model)
    x0 = noise(n, (2,), seed + SAMPLER_SEED_OFFSET, device)
    began = time.perf_counter()
    if spec.solver == "sde":
        gen = torch.Generator(device=device).manual_seed(seed + SAMPLER_SEED_OFFSET + 1)
        out = sample_sde(model, x0, spec.steps, spec.diffusion, spec.score, gen, keep_trajectory=True, training=training)
    elif spec.solver == "dopri5":
        out = sample_ode(model, x0, "dopri5", REFERENCE_GRID, keep_trajectory=True)
    else:
        out = sample_ode(model, x0, spec.solver, spec.steps, keep_trajectory=True)
    seconds = time.perf_counter() - began
    x = out.x.float().cpu().numpy()
    traj = out.trajectory.float().cpu().numpy()
    # At most 50 drawn vertices per path: a 1000-step SDE would otherwise weigh 20x more than it shows.
    keep = np.unique(np.linspace(0, traj.shape[0] - 1, _paths_grid(traj.shape[0] - 1) + 1).round().astype(int))
    ref = np.asarray(reference, dtype=np.float32)
    m = min(len(x), len(ref))
    return SamplerRun(spec, x, traj[keep, :paths], out.nfe, wasserstein2(x, ref, n=m, seed=seed), energy_distance_unbiased(x[:m], ref[:m]), seconds)


def sde_score(model: FlowModel, training: dict) -> str | None:
    """Which score an SDE may use for this model: its head, the identity where exact, or None (no SDE)."""
    if model.has_score:
        return "head"
    if training.get("sigma", 0.0) == 0 and training.get("coupling") == "independent":
        return "identity"
    return None
