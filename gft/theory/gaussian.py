"""Closed-form oracle of GFT between Gaussians (method.md, fact 3), in float64 numpy.

Path ``x_t = (1 - t) x0 + t x1`` (sigma = 0), independent coupling, source ``N(0, I)`` at ``t = 0``.
For data ``N(mu, S)`` the marginal velocity ``E[x1 - x0 | x_t = x]`` is affine, ``A(t) x + b(t)``, with
``Sigma_t = (1-t)^2 I + t^2 S``, ``C_t = t S - (1-t) I``, ``A = C_t Sigma_t^{-1}``, ``b = mu - A t mu``.
GFT at weight ``lam`` follows ``(1 - lam) v_target + lam v_pre``; started at ``N(0, I)`` it stays
Gaussian with ``m' = A m + b`` and ``P' = A P + P A^T`` (``A``, ``b`` the blended coefficients).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import scipy.linalg

from gft.core.schedules import lambda_of_tau  # noqa: F401 (one tau -> lambda map, re-exported for the oracle's callers)

DEFAULT_STEPS = 2000


@dataclass(frozen=True, eq=False)
class Gaussian:
    """A Gaussian law ``N(mean, cov)`` on R^d; arrays are stored as read-only float64 copies."""

    mean: np.ndarray
    cov: np.ndarray

    def __post_init__(self) -> None:
        mean = np.array(self.mean, dtype=np.float64)
        cov = np.array(self.cov, dtype=np.float64)
        if mean.ndim != 1 or mean.shape[0] < 1:
            raise ValueError(f"mean must have shape (d,) with d >= 1, got shape {mean.shape}")
        if not np.all(np.isfinite(mean)):
            raise ValueError("mean must be finite, got NaN or inf entries")
        d = mean.shape[0]
        if cov.shape != (d, d):
            raise ValueError(f"cov must have shape ({d}, {d}) to match mean, got shape {cov.shape}")
        if not np.all(np.isfinite(cov)):
            raise ValueError("cov must be finite, got NaN or inf entries")
        scale = max(1.0, float(np.max(np.abs(cov))))
        if np.max(np.abs(cov - cov.T)) > 1e-8 * scale:
            raise ValueError("cov must be symmetric (|cov - cov^T| <= 1e-8 * max|cov|)")
        cov = 0.5 * (cov + cov.T)
        try:
            np.linalg.cholesky(cov)
        except np.linalg.LinAlgError:
            raise ValueError("cov must be positive definite (all eigenvalues > 0)") from None
        mean.flags.writeable = False
        cov.flags.writeable = False
        object.__setattr__(self, "mean", mean)
        object.__setattr__(self, "cov", cov)

    @property
    def dim(self) -> int:
        return int(self.mean.shape[0])

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """Draw ``n`` points, shape ``(n, d)``, from the given generator."""
        if not (isinstance(n, (int, np.integer)) and n >= 1):
            raise ValueError(f"n must be an integer >= 1, got {n!r}")
        return rng.multivariate_normal(self.mean, self.cov, size=int(n))


def _check_time(t: float, name: str = "t") -> float:
    t = float(t)
    if not 0.0 <= t <= 1.0:
        raise ValueError(f"{name} must be in [0, 1], got {t}")
    return t


def _check_lam(lam: float) -> float:
    lam = float(lam)
    if not 0.0 <= lam <= 1.0:
        raise ValueError(f"lam must be in [0, 1], got {lam}")
    return lam


def _check_pair(pre: Gaussian, target: Gaussian) -> int:
    if pre.dim != target.dim:
        raise ValueError(f"pre and target must share a dimension, got {pre.dim} and {target.dim}")
    return pre.dim


def _check_steps(n_steps: int) -> int:
    if not (isinstance(n_steps, (int, np.integer)) and n_steps >= 1):
        raise ValueError(f"n_steps must be an integer >= 1, got {n_steps!r}")
    return int(n_steps)


def _marginal_coeffs_on(data: Gaussian, times: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Batched ``(A, b)`` of shapes ``(T, d, d)`` and ``(T, d)`` at ``times`` (already checked)."""
    t = times[:, None, None]
    eye = np.eye(data.dim)
    sigma_t = (1 - t) ** 2 * eye + t**2 * data.cov
    c_t = t * data.cov - (1 - t) * eye
    # C_t and Sigma_t are polynomials in S, so they commute and A is symmetric: A = Sigma^{-1} C.
    a = np.linalg.solve(sigma_t, c_t)
    a = 0.5 * (a + np.swapaxes(a, -1, -2))
    b = data.mean - times[:, None] * (a @ data.mean)
    return a, b


def _blended_coeffs_on(
    pre: Gaussian, target: Gaussian, lam: float, times: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    a_tgt, b_tgt = _marginal_coeffs_on(target, times)
    a_pre, b_pre = _marginal_coeffs_on(pre, times)
    return (1 - lam) * a_tgt + lam * a_pre, (1 - lam) * b_tgt + lam * b_pre


def marginal_velocity_coeffs(data: Gaussian, t: float) -> tuple[np.ndarray, np.ndarray]:
    """``(A, b)`` with ``E[x1 - x0 | x_t = x] = A x + b`` for data ``N(mu, S)``, ``t`` in [0, 1]."""
    a, b = _marginal_coeffs_on(data, np.array([_check_time(t)]))
    return a[0], b[0]


def blended_velocity_coeffs(
    pre: Gaussian, target: Gaussian, lam: float, t: float
) -> tuple[np.ndarray, np.ndarray]:
    """``(A, b)`` of the GFT drift ``(1 - lam) v_target + lam v_pre`` at time ``t``."""
    lam, t = _check_lam(lam), _check_time(t)
    _check_pair(pre, target)
    a, b = _blended_coeffs_on(pre, target, lam, np.array([t]))
    return a[0], b[0]


def blended_velocity(
    points: np.ndarray, pre: Gaussian, target: Gaussian, lam: float, t: float
) -> np.ndarray:
    """Exact blended velocity at ``points`` of shape ``(N, d)``; returns ``(N, d)``."""
    d = _check_pair(pre, target)
    points = np.asarray(points, dtype=np.float64)
    if points.ndim != 2 or points.shape[1] != d:
        raise ValueError(f"points must have shape (N, {d}), got shape {points.shape}")
    a, b = blended_velocity_coeffs(pre, target, lam, t)
    return points @ a.T + b


def time_grid(n_steps: int, t_end: float = 1.0) -> np.ndarray:
    """The fixed grid ``linspace(0, t_end, n_steps + 1)`` used by every integrator here."""
    return np.linspace(0.0, _check_time(t_end, "t_end"), _check_steps(n_steps) + 1)


# Hand-written classic RK4: the ODEs are tiny, fixed-step and numpy-only, so torchdiffeq is not needed.
def _rk4_affine(
    rhs: Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray],
    pre: Gaussian,
    target: Gaussian,
    lam: float,
    y0: np.ndarray,
    t_end: float,
    n_steps: int,
) -> np.ndarray:
    """Solve ``y' = rhs(A(t), b(t), y)`` on ``time_grid(n_steps, t_end)``; ``(n_steps + 1, *y0.shape)``."""
    # Every RK4 stage sits on the half-step grid, so all coefficients come from one batched solve.
    a_half, b_half = _blended_coeffs_on(pre, target, lam, np.linspace(0.0, t_end, 2 * n_steps + 1))
    h = t_end / n_steps
    path = np.empty((n_steps + 1,) + y0.shape, dtype=np.float64)
    path[0] = y = y0
    for k in range(n_steps):
        i = 2 * k
        k1 = rhs(a_half[i], b_half[i], y)
        k2 = rhs(a_half[i + 1], b_half[i + 1], y + h / 2 * k1)
        k3 = rhs(a_half[i + 1], b_half[i + 1], y + h / 2 * k2)
        k4 = rhs(a_half[i + 2], b_half[i + 2], y + h * k3)
        y = y + h / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
        path[k + 1] = y
    return path


def _law_path(pre: Gaussian, target: Gaussian, lam: float, t_end: float, n_steps: int) -> np.ndarray:
    """Packed ``[m, vec(P)]`` states of the blended flow from ``N(0, I)``, shape ``(n_steps+1, d+d^2)``."""
    d = _check_pair(pre, target)
    lam, t_end, n_steps = _check_lam(lam), _check_time(t_end, "t"), _check_steps(n_steps)

    def rhs(a: np.ndarray, b: np.ndarray, y: np.ndarray) -> np.ndarray:
        m, p = y[:d], y[d:].reshape(d, d)
        return np.concatenate([a @ m + b, (a @ p + p @ a.T).ravel()])

    y0 = np.concatenate([np.zeros(d), np.eye(d).ravel()])
    return _rk4_affine(rhs, pre, target, lam, y0, t_end, n_steps)


def _unpack_law(y: np.ndarray, d: int) -> Gaussian:
    p = y[d:].reshape(d, d)
    return Gaussian(y[:d].copy(), 0.5 * (p + p.T))


def law_at(
    pre: Gaussian, target: Gaussian, lam: float, t: float, n_steps: int = DEFAULT_STEPS
) -> Gaussian:
    """Law at time ``t`` of the blended flow started at ``N(0, I)`` (RK4, ``n_steps`` on [0, t])."""
    path = _law_path(pre, target, lam, t, n_steps)
    return _unpack_law(path[-1], pre.dim)


def terminal_law(pre: Gaussian, target: Gaussian, lam: float, n_steps: int = DEFAULT_STEPS) -> Gaussian:
    """Law at ``t = 1`` of the blended flow started at ``N(0, I)``."""
    return law_at(pre, target, lam, 1.0, n_steps)


def mean_trajectory(
    pre: Gaussian, target: Gaussian, lam: float, n_steps: int = DEFAULT_STEPS
) -> np.ndarray:
    """Mean of the blended flow on ``time_grid(n_steps)``, shape ``(n_steps + 1, d)``."""
    return _law_path(pre, target, lam, 1.0, n_steps)[:, : pre.dim].copy()


def particle_trajectories(
    x0: np.ndarray, pre: Gaussian, target: Gaussian, lam: float, n_steps: int = 100
) -> np.ndarray:
    """Particles ``x0`` of shape ``(N, d)`` moved along the exact blended field on ``time_grid(n_steps)``.

    Returns ``(n_steps + 1, N, d)``; row 0 is ``x0``.
    """
    d = _check_pair(pre, target)
    x0 = np.asarray(x0, dtype=np.float64)
    if x0.ndim != 2 or x0.shape[1] != d:
        raise ValueError(f"x0 must have shape (N, {d}), got shape {x0.shape}")
    lam, n_steps = _check_lam(lam), _check_steps(n_steps)
    return _rk4_affine(lambda a, b, x: x @ a.T + b, pre, target, lam, x0, 1.0, n_steps)


def gaussian_w2(a: Gaussian, b: Gaussian) -> float:
    """Closed-form 2-Wasserstein (Bures-Wasserstein) distance between two Gaussians."""
    if a.dim != b.dim:
        raise ValueError(f"a and b must share a dimension, got {a.dim} and {b.dim}")
    root_b = np.real(scipy.linalg.sqrtm(b.cov))
    cross = np.real(scipy.linalg.sqrtm(root_b @ a.cov @ root_b))
    bures_sq = np.trace(a.cov) + np.trace(b.cov) - 2.0 * np.trace(cross)
    mean_sq = float(np.sum((a.mean - b.mean) ** 2))
    # Round-off can push the Bures term slightly below zero for (nearly) equal covariances.
    return float(np.sqrt(mean_sq + max(float(bures_sq), 0.0)))
