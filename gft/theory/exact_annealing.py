"""The annealing page's exact numbers: GFT between two Gaussians in closed form (:mod:`gft.theory.gaussian`).

For a constant temperature tau the blended drift is affine in x, so the terminal law of its flow, its
W2 to both ends and the drift distances along the target path are exact: no training, no sampling.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np

from gft.theory import gaussian as gauss

COV_PRESETS: dict[str, tuple[tuple[float, float], tuple[float, float]]] = {
    "round": ((1.0, 0.0), (0.0, 1.0)),
    "small": ((0.15, 0.0), (0.0, 0.15)),
    "wide along x": ((2.0, 0.0), (0.0, 0.25)),
    "wide along y": ((0.25, 0.0), (0.0, 2.0)),
    "tilted": ((1.0, 0.8), (0.8, 1.0)),
}
TAU_CHOICES = ("0", "0.1", "0.25", "0.5", "1", "2", "4", "10", "100", "inf")
MEAN_ANSWERS = (
    "on the target mean",
    "between the two, closer to the target",
    "exactly halfway between the two means",
    "between the two, closer to the pretrained mean",
    "on the pretrained mean",
    "elsewhere: off the segment between the two means",
)


def parse_tau(text: str) -> float:
    """A temperature from the page's choices: a number >= 0 or ``inf``."""
    try:
        tau = float(text)
    except (TypeError, ValueError):
        raise ValueError(f"tau must be a number >= 0 or 'inf', got {text!r}") from None
    if not tau >= 0:
        raise ValueError(f"tau must be a number >= 0 or 'inf', got {text!r}")
    return tau


def gaussian_2d(mean: tuple[float, float], preset: str) -> gauss.Gaussian:
    if preset not in COV_PRESETS:
        raise ValueError(f"covariance preset must be one of {list(COV_PRESETS)}, got {preset!r}")
    return gauss.Gaussian(np.asarray(mean, dtype=np.float64), np.asarray(COV_PRESETS[preset]))


def _rms_affine_gap(d_a: np.ndarray, d_b: np.ndarray, target: gauss.Gaussian, times: np.ndarray) -> float:
    """RMS of ``|D_a(t) x + D_b(t)|`` for ``x`` on the target path ``N(t mu, (1-t)^2 I + t^2 S)``, over t."""
    eye = np.eye(target.dim)
    total = 0.0
    for a, b, t in zip(d_a, d_b, times):
        m = t * target.mean
        p = (1 - t) ** 2 * eye + t**2 * target.cov
        # E|Dx + e|^2 = |Dm + e|^2 + tr(D P D^T) for x ~ N(m, P).
        total += float(np.sum((a @ m + b) ** 2) + np.trace(a @ p @ a.T))
    return math.sqrt(total / len(times))


def _coeffs(fn: Callable[[float], tuple[np.ndarray, np.ndarray]], times: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    pairs = [fn(float(t)) for t in times]
    return np.array([a for a, _ in pairs]), np.array([b for _, b in pairs])


@dataclass(frozen=True)
class AnnealingNumbers:
    """The exact facts the annealing page shows for one temperature."""

    tau: float
    lam: float
    terminal: gauss.Gaussian
    w2_to_target: float
    w2_to_pretrained: float
    drift_gap: float  # RMS |f_pre - f_target| along the target path (time-averaged)
    distance_to_target: float  # RMS |f_tau - f_target| along the same path: lam * drift_gap
    mean_position: float  # terminal mean projected on target -> pretrained: 0 target, 1 pretrained
    mean_offset: float  # its distance off that line, relative to |mu_pre - mu_target|

    @property
    def answer(self) -> str:
        """Which of :data:`MEAN_ANSWERS` describes where the terminal mean lands."""
        if not math.isfinite(self.mean_position):
            return MEAN_ANSWERS[0]  # both means coincide: every answer on the segment is the same point
        tol = 0.02
        if self.mean_offset > tol:
            return MEAN_ANSWERS[5]
        p = self.mean_position
        if abs(p) <= tol:
            return MEAN_ANSWERS[0]
        if abs(p - 1) <= tol:
            return MEAN_ANSWERS[4]
        if abs(p - 0.5) <= tol:
            return MEAN_ANSWERS[2]
        if 0 < p < 0.5:
            return MEAN_ANSWERS[1]
        if 0.5 < p < 1:
            return MEAN_ANSWERS[3]
        return MEAN_ANSWERS[5]  # on the line, but beyond one of the means


def annealing_numbers(pre: gauss.Gaussian, target: gauss.Gaussian, tau: float, n_steps: int = 200) -> AnnealingNumbers:
    """Terminal law of the flow at constant ``tau``, its W2 to both ends, and the drift distances."""
    lam = gauss.lambda_of_tau(tau)
    terminal = gauss.terminal_law(pre, target, lam, n_steps)
    times = (np.arange(n_steps) + 0.5) / n_steps  # midpoints: the time average of the gap
    a_pre, b_pre = _coeffs(lambda t: gauss.marginal_velocity_coeffs(pre, t), times)
    a_tgt, b_tgt = _coeffs(lambda t: gauss.marginal_velocity_coeffs(target, t), times)
    a_bl, b_bl = _coeffs(lambda t: gauss.blended_velocity_coeffs(pre, target, lam, t), times)
    gap = _rms_affine_gap(a_pre - a_tgt, b_pre - b_tgt, target, times)
    dist = _rms_affine_gap(a_bl - a_tgt, b_bl - b_tgt, target, times)
    seg = pre.mean - target.mean
    length2 = float(seg @ seg)
    rel = terminal.mean - target.mean
    if length2 < 1e-12:
        position, offset = float("nan"), 0.0
    else:
        position = float(rel @ seg) / length2
        offset = float(np.linalg.norm(rel - position * seg)) / math.sqrt(length2)
    return AnnealingNumbers(
        tau=float(tau),
        lam=lam,
        terminal=terminal,
        w2_to_target=gauss.gaussian_w2(terminal, target),
        w2_to_pretrained=gauss.gaussian_w2(terminal, pre),
        drift_gap=gap,
        distance_to_target=dist,
        mean_position=position,
        mean_offset=offset,
    )


TRAIL_TAUS = (math.inf, 10.0, 4.0, 2.0, 1.0, 0.5, 0.25, 0.1, 0.0)  # the stops of the trail, hot to cold


@dataclass(frozen=True)
class TrailStop:
    """The terminal law of GFT held at one temperature: one stop of the path an anneal walks."""

    tau: float
    lam: float
    law: gauss.Gaussian


def annealing_trail(pre: gauss.Gaussian, target: gauss.Gaussian, taus: tuple[float, ...] = TRAIL_TAUS, n_steps: int = 200) -> list[TrailStop]:
    """Terminal laws as τ sweeps from ``taus[0]`` to ``taus[-1]`` (∞ → 0 by default): at τ = ∞ the pretrained law,
    at τ = 0 the target, and in between where each converged constant-τ stage of a schedule would land."""
    if not taus:
        raise ValueError("taus must hold at least one temperature")
    stops = []
    for tau in taus:
        lam = gauss.lambda_of_tau(tau)
        stops.append(TrailStop(float(tau), lam, gauss.terminal_law(pre, target, lam, n_steps)))
    return stops
