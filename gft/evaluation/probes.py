"""What the figures show, computed from a model (or a coupling): trajectories, samples, drifts, velocity
fields, digit grids and coupled batches, all returned as float32 numpy arrays.

:mod:`gft.viz` only draws arrays; everything that runs a network or draws noise for a figure lives here,
so a page reads "probe, then draw".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np
import torch

from gft.constants import SNAPSHOT_SEED_OFFSET
from gft.core.couplings import Coupling
from gft.core.device import model_device
from gft.core.models import FlowModel
from gft.core.sampling import noise, sample_ode
from gft.data import DataSpec


def as_numpy(x) -> np.ndarray:
    """A tensor (any device) or array as contiguous float32 numpy: the form :mod:`gft.viz` accepts."""
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    return np.ascontiguousarray(np.asarray(x, dtype=np.float32))


def model_trajectories(model: FlowModel, n: int, seed: int, steps: int = 40) -> np.ndarray:
    """Euler trajectories (steps+1, n, *shape) of ``n`` seeded noise draws, float32 numpy."""
    x0 = noise(n, model.config.data_shape, seed, model_device(model))
    return as_numpy(sample_ode(model, x0, "euler", steps, keep_trajectory=True).trajectory)


def model_samples(model: FlowModel, n: int, seed: int, steps: int = 50) -> np.ndarray:
    """``n`` samples from ``steps`` Euler steps, float32 numpy."""
    x0 = noise(n, model.config.data_shape, seed, model_device(model))
    return as_numpy(sample_ode(model, x0, "euler", steps).x)


def model_grid(model: FlowModel, n: int, seed: int, steps: int = 20) -> np.ndarray:
    """Model-scale images (n, 1, 8, 8) of ``model`` from the noise a run with ``seed`` animates (Euler).

    The trainer draws its snapshot particles from ``noise(n, shape, seed + SNAPSHOT_SEED_OFFSET)``, so
    this grid shows the pretrained model on exactly the seeds the training animation follows.
    """
    return model_samples(model, n, seed + SNAPSHOT_SEED_OFFSET, steps)


@torch.no_grad()
def drift_along(model: FlowModel, trajectory: np.ndarray, times: Sequence[float] | None = None) -> np.ndarray:
    """The model's velocity at every point of a (K+1, n, d) array, row k at time ``times[k]``.

    ``times`` defaults to the Euler grid t_k = k / K of a trajectory.
    """
    traj = as_numpy(trajectory)
    k1, n = traj.shape[:2]
    ts = np.linspace(0, 1, k1, dtype=np.float32) if times is None else as_numpy(times)
    if ts.shape != (k1,):
        raise ValueError(f"times must hold one time per row: {k1} rows, {ts.size} times")
    device = model_device(model)
    x = torch.from_numpy(np.ascontiguousarray(traj.reshape(k1 * n, *traj.shape[2:]))).to(device)
    t = torch.from_numpy(np.repeat(ts, n)).to(device)
    was_training = model.training
    model.eval()
    try:
        v = model(x, t)
    finally:
        model.train(was_training)
    return as_numpy(v).reshape(traj.shape)


def grid_points(n: int = 15, lim: float = 4.0) -> np.ndarray:
    """An n x n grid over [-lim, lim]^2, (n*n, 2) float32."""
    if n < 2:
        raise ValueError(f"n must be >= 2, got {n}")
    if not lim > 0:
        raise ValueError(f"lim must be > 0, got {lim}")
    axis = np.linspace(-lim, lim, n, dtype=np.float32)
    gx, gy = np.meshgrid(axis, axis)
    return np.stack([gx.ravel(), gy.ravel()], axis=1)


def velocity_field(model: FlowModel, times: Iterable[float], n: int = 15, lim: float = 4.0) -> tuple[np.ndarray, np.ndarray]:
    """The model's velocity on an n x n grid at each time: (grid (n*n, 2), velocities (T, n*n, 2))."""
    grid = grid_points(n, lim)
    ts = as_numpy(list(times))
    return grid, drift_along(model, np.broadcast_to(grid, (len(ts), *grid.shape)), ts)


# ---- the coupling, drawn -------------------------------------------------------------------------
@dataclass(frozen=True)
class CoupledBatch:
    """A noise batch paired with a target batch by one coupling (rows are pairs)."""

    kind: str
    x0: np.ndarray  # (n, 2) float32
    x1: np.ndarray  # (n, 2) float32

    @property
    def total_cost(self) -> float:
        """Sum of squared pair distances: what exact OT minimises over pairings."""
        return float(((self.x0.astype(np.float64) - self.x1) ** 2).sum())


def coupled_batch(kind: str, target: str, n: int = 64, seed: int = 0, reg: float = 1.0) -> CoupledBatch:
    """Draw ``n`` noise and ``n`` target points from ``seed`` and pair them with ``kind`` (``target``: a data spec).

    Every kind sees the same two batches for a given seed, so their pairings compare directly.
    """
    if not isinstance(n, int) or not 2 <= n <= 4096:
        raise ValueError(f"n must be an integer in [2, 4096], got {n!r}")
    x1 = DataSpec(target).points(n, seed)
    if len(x1) > n:  # a file (an upload, a drawing) is its whole set: draw n of its rows
        x1 = x1[torch.randperm(len(x1), generator=torch.Generator().manual_seed(seed))[:n]]
    gen = torch.Generator().manual_seed(seed + 1)
    x0 = torch.randn(x1.shape, generator=gen)
    x0, x1 = Coupling(kind, reg).pair(x0, x1, gen)
    return CoupledBatch(kind, as_numpy(x0), as_numpy(x1))


# ---- the blended target, drawn -------------------------------------------------------------------
TARGET_T_MAX = 0.98  # the kernel estimate divides by 1 - t: stop just short of the data end


@torch.no_grad()
def target_drift_kernel(target: np.ndarray | torch.Tensor, x: np.ndarray, t: float) -> np.ndarray:
    """The flow-matching target drift at points ``x`` (n, 2) and time ``t``, estimated from target samples.

    For the straight path x_t = (1 - t) x0 + t x1 with x0 ~ N(0, I) paired independently with x1 drawn
    from the samples, the drift the regression converges to is E[x1 - x0 | x_t = x] =
    sum_i w_i (x1_i - x) / (1 - t), with w_i proportional to exp(-|x - t x1_i|^2 / (2 (1 - t)^2)) (the
    posterior of which sample x came from). Exact for the empirical target; ``t`` is clipped to
    :data:`TARGET_T_MAX`, where the weights become a nearest-sample rule.
    """
    x1 = torch.as_tensor(as_numpy(target), dtype=torch.float64)
    pts = torch.as_tensor(as_numpy(x), dtype=torch.float64)
    if x1.ndim != 2 or pts.ndim != 2 or x1.shape[1] != pts.shape[1]:
        raise ValueError(f"target (m, d) and points (n, d) must share d, got {tuple(x1.shape)} and {tuple(pts.shape)}")
    if not 0.0 <= t <= 1.0:
        raise ValueError(f"t must be in [0, 1], got {t}")
    t = min(float(t), TARGET_T_MAX)
    logw = -torch.cdist(pts, t * x1).square() / (2 * (1 - t) ** 2)
    w = torch.softmax(logw, dim=1)  # (n, m): stable even where every weight underflows on its own
    return as_numpy((w @ x1 - pts) / (1 - t))


@dataclass(frozen=True)
class BlendArrows:
    """Drifts at the particles of one trajectory (K+1, n, 2 each): what GFT blends and what it learned."""

    lam: float  # the blend weight of f_pre at this snapshot, tau / (1 + tau)
    f_pre: np.ndarray  # the pretrained drift
    target: np.ndarray  # the target drift, kernel estimate from target samples (see target_drift_kernel)
    learned: np.ndarray  # the drift the snapshot's model follows

    @property
    def blend(self) -> np.ndarray:
        """(1 - lambda) * target + lambda * f_pre: the regression target of GFT at this lambda."""
        return blend(self.target, self.f_pre, self.lam)


def blend(target: np.ndarray, f_pre: np.ndarray, lam: float) -> np.ndarray:
    """GFT's blended target (1 - lambda) * target + lambda * f_pre, elementwise."""
    if not 0.0 <= lam <= 1.0:
        raise ValueError(f"lam must be in [0, 1], got {lam}")
    return as_numpy((1.0 - lam) * np.asarray(target, dtype=np.float64) + lam * np.asarray(f_pre, dtype=np.float64))


def blend_arrows(pretrained: FlowModel, target: np.ndarray, trajectory: np.ndarray, lam: float, n: int = 150) -> BlendArrows:
    """The drifts GFT blends, at the first ``n`` particles of a snapshot's Euler trajectory (K+1, n, 2).

    ``learned`` is the trajectory's own Euler increments times K (exactly the drift its model followed).
    """
    traj = as_numpy(trajectory)[:, :n]
    k = traj.shape[0] - 1
    if k < 1:
        raise ValueError(f"trajectory needs at least 2 time points, got {traj.shape[0]}")
    times = np.linspace(0.0, 1.0, k + 1)
    f_pre = drift_along(pretrained, traj)
    tgt = np.stack([target_drift_kernel(target, traj[i], float(times[i])) for i in range(k + 1)])
    steps = (traj[1:] - traj[:-1]) * np.float32(k)
    learned = np.concatenate([steps, steps[-1:]])  # the last point has no step of its own: repeat the last drift
    return BlendArrows(float(lam), f_pre, tgt, as_numpy(learned))
