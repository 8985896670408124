"""Metrics as the project defines them: W2, MMD, the unbiased energy distance, path geometry,
stability of a fine-tuning curve and mode coverage."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import ot
import torch
from scipy.stats import spearmanr

W2_POINTS = 2000


def _as_numpy(x) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    x = np.asarray(x, dtype=np.float64)
    return x.reshape(x.shape[0], -1)


def _subsample(x: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    return x if len(x) <= n else x[rng.choice(len(x), n, replace=False)]


def wasserstein2(x, y, n: int = W2_POINTS, seed: int = 0) -> float:
    """Exact W2 between empirical samples: ``sqrt(ot.emd2)`` on squared Euclidean cost, subsampled to ``n``."""
    if n < 2:
        raise ValueError(f"n must be >= 2, got {n}")
    rng = np.random.default_rng(seed)
    a = _subsample(_as_numpy(x), n, rng)
    b = _subsample(_as_numpy(y), n, rng)
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        return float("inf")
    cost = ot.dist(a, b, metric="sqeuclidean")
    value = ot.emd2(np.empty(0), np.empty(0), cost, numItermax=10_000_000)
    return float(np.sqrt(max(value, 0.0)))


def _rbf_mean(a: np.ndarray, b: np.ndarray, bandwidths: tuple[float, ...]) -> float:
    d2 = ot.dist(a, b, metric="sqeuclidean")
    return float(np.mean([np.exp(-d2 / (2 * h * h)).mean() for h in bandwidths]))


def mmd_rbf(x, y, bandwidths: tuple[float, ...] = (0.1, 0.5, 1.0, 2.0, 5.0), n: int = 2000, seed: int = 0) -> float:
    """Biased MMD^2 estimate with an RBF kernel averaged over several bandwidths."""
    rng = np.random.default_rng(seed)
    a = _subsample(_as_numpy(x), n, rng)
    b = _subsample(_as_numpy(y), n, rng)
    return max(_rbf_mean(a, a, bandwidths) + _rbf_mean(b, b, bandwidths) - 2 * _rbf_mean(a, b, bandwidths), 0.0)


def _mean_distance(a: np.ndarray, b: np.ndarray, same: bool, block: int = 2048) -> float:
    """Mean Euclidean distance over pairs (i, j), i != j when ``a`` is ``b``; blocked so memory stays O(block * n)."""
    total = 0.0
    for start in range(0, len(a), block):
        d = np.sqrt(ot.dist(a[start : start + block], b, metric="sqeuclidean"))
        total += d.sum()  # the diagonal of a set with itself is zero: nothing to remove from the sum
    pairs = len(a) * (len(b) - 1) if same else len(a) * len(b)
    return total / pairs


def energy_distance_unbiased(x, y) -> float:
    """The U-statistic of the energy distance, ``2 E|X - Y| - E|X - X'| - E|Y - Y'|`` (i != j in the within terms).

    Unbiased: its mean over independent draws of one law is 0, so it can read negative at the noise
    level. Uses every point (no subsample); memory grows linearly, time as ``len(x) * len(y)``.
    """
    a, b = _as_numpy(x), _as_numpy(y)
    if len(a) < 2 or len(b) < 2:
        raise ValueError(f"energy distance needs at least 2 points a side, got {len(a)} and {len(b)}")
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        return float("inf")
    return float(2 * _mean_distance(a, b, same=False) - _mean_distance(a, a, same=True) - _mean_distance(b, b, same=True))


@dataclass(frozen=True)
class PathGeometry:
    """Geometry of sampled trajectories (Euler grid): length, straightness, kinetic energy."""

    path_length: float
    straightness: float
    kinetic_energy: float


def path_geometry(trajectory) -> PathGeometry:
    """From an Euler trajectory ``(K + 1, n, ...)``: the velocity on step k is ``(x_{k+1} - x_k) K``.

    Path length is the mean per-sample sum of step lengths; straightness is
    ``E int |(x_1 - x_0) - v|^2 dt`` (0 for straight constant-speed paths); kinetic energy ``E int |v|^2 dt``.
    """
    traj = trajectory.detach().cpu().double() if isinstance(trajectory, torch.Tensor) else torch.as_tensor(trajectory, dtype=torch.float64)
    k = traj.shape[0] - 1
    if k < 1:
        raise ValueError("a trajectory needs at least 2 time points")
    traj = traj.reshape(k + 1, traj.shape[1], -1)
    steps = traj[1:] - traj[:-1]
    v = steps * k
    chord = traj[-1] - traj[0]
    length = steps.norm(dim=2).sum(0).mean()
    straight = ((chord[None] - v) ** 2).sum(2).mean(0).mean()  # mean over steps = integral over dt
    kinetic = (v**2).sum(2).mean(0).mean()
    return PathGeometry(float(length), float(straight), float(kinetic))


@dataclass(frozen=True)
class Stability:
    """Stability of a fine-tuning curve of W2 (or FD) against step."""

    spearman: float  # rank correlation of the metric with step: -1 is a steady descent
    diff_variance: float  # variance of successive differences
    largest_rise: float  # largest increase between two successive evaluations (0 if none)


def stability(values) -> Stability:
    v = np.asarray(values, dtype=np.float64)
    if v.ndim != 1 or len(v) < 3:
        raise ValueError(f"stability needs a 1D curve of at least 3 evaluations, got shape {v.shape}")
    if not np.isfinite(v).all():
        raise ValueError("stability needs finite values")
    d = np.diff(v)
    rho = spearmanr(np.arange(len(v)), v).statistic if np.ptp(v) > 0 else 0.0
    return Stability(float(rho), float(d.var()), float(max(d.max(), 0.0)))


def mode_coverage(samples, centres, std: float, min_share: float = 0.5) -> float:
    """Share of modes holding at least ``min_share`` of their expected mass (equal-weight mixtures).

    A sample counts for its nearest centre when within 3 standard deviations of it.
    """
    x = _as_numpy(samples)
    c = _as_numpy(centres)
    d = np.sqrt(ot.dist(x, c, metric="sqeuclidean"))
    nearest = d.argmin(1)
    close = d[np.arange(len(x)), nearest] <= 3 * std
    counts = np.bincount(nearest[close], minlength=len(c))
    expected = len(x) / len(c)
    return float((counts >= min_share * expected).mean())


def steps_to_threshold(steps, values, threshold: float) -> int | None:
    """First evaluated step whose value is at or below ``threshold`` (None if never)."""
    for s, v in zip(steps, values):
        if v <= threshold:
            return int(s)
    return None
