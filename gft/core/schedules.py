"""Temperature schedules: fine-tuning step -> tau, and lambda = tau / (1 + tau), the pretrained weight.

Annealed families run over the first ``(1 - final_fraction)`` of the steps and then hold tau = 0, so
every annealed run ends with plain flow matching on the target; a stop temperature ``tau_end > 0``
floors the anneal and holds that tau instead (the blend keeps some of the pretrained drift). Specs (CLI and URL form):

``constant:TAU``, ``linear:TAU_MAX``, ``cosine:TAU_MAX``, ``exponential:TAU_MAX,RATE``,
``stages:TAU_MAX,RATIO,K`` and ``piecewise:P0/T0,P1/T1,...`` (breakpoints: progress in [0, 1] through
the annealed part, and tau).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

FAMILIES = ("constant", "linear", "cosine", "exponential", "stages", "piecewise")
MAX_TAU = 1e6


def lambda_of_tau(tau: float) -> float:
    """Weight of the pretrained drift in the blended target: ``tau / (1 + tau)``; ``tau = inf`` gives 1."""
    tau = float(tau)
    if not tau >= 0.0:  # also rejects NaN
        raise ValueError(f"tau must be in [0, inf], got {tau}")
    if math.isinf(tau):
        return 1.0
    return tau / (1.0 + tau)


@dataclass(frozen=True)
class Schedule:
    """A temperature schedule over ``total_steps`` fine-tuning steps."""

    family: str
    total_steps: int
    tau_max: float = 1.0
    rate: float = 5.0  # exponential: tau falls to tau_max * exp(-rate) by the end of the annealing
    ratio: float = 0.5  # stages: tau_k = tau_max * ratio**k
    stages: int = 5
    final_fraction: float = 0.2
    breakpoints: tuple[tuple[float, float], ...] = field(default_factory=tuple)
    tau_end: float = 0.0  # the stop temperature: tau never falls below it, and the final phase holds it

    def __post_init__(self) -> None:
        if self.family not in FAMILIES:
            raise ValueError(f"schedule family must be one of {FAMILIES}, got {self.family!r}")
        if not isinstance(self.total_steps, int) or self.total_steps < 1:
            raise ValueError(f"total_steps must be an integer >= 1, got {self.total_steps!r}")
        if not (0 <= self.tau_max <= MAX_TAU):
            raise ValueError(f"tau must be in [0, {MAX_TAU:g}], got {self.tau_max}")
        if self.family != "constant" and self.family != "piecewise" and not self.tau_max > 0:
            raise ValueError(f"tau_max must be > 0 for an annealed schedule, got {self.tau_max}")
        if not (0 < self.rate <= 50):
            raise ValueError(f"exponential rate must be in (0, 50], got {self.rate}")
        if not (0 < self.ratio < 1):
            raise ValueError(f"stages ratio must be in (0, 1), got {self.ratio}")
        if not (isinstance(self.stages, int) and 1 <= self.stages <= 100):
            raise ValueError(f"stages K must be an integer in [1, 100], got {self.stages!r}")
        if not (0 <= self.final_fraction < 1):
            raise ValueError(f"final_fraction must be in [0, 1), got {self.final_fraction}")
        if self.family == "piecewise":
            self._check_breakpoints()
        if not (0 <= self.tau_end <= MAX_TAU):
            raise ValueError(f"tau_end must be in [0, {MAX_TAU:g}], got {self.tau_end}")
        if self.annealed and self.tau_end > 0 and not self.tau_end < self.start_tau:
            raise ValueError(f"tau_end ({self.tau_end:g}) must be below the schedule's starting tau ({self.start_tau:g})")

    def _check_breakpoints(self) -> None:
        bp = self.breakpoints
        if len(bp) < 2:
            raise ValueError("piecewise schedule needs at least 2 breakpoints")
        ps = [p for p, _ in bp]
        if ps[0] != 0 or ps[-1] != 1 or any(b <= a for a, b in zip(ps, ps[1:])):
            raise ValueError(f"piecewise breakpoints must rise strictly from progress 0 to 1, got {ps}")
        if any(not (0 <= tau <= MAX_TAU) for _, tau in bp):
            raise ValueError(f"piecewise tau values must be in [0, {MAX_TAU:g}]")

    @property
    def annealed(self) -> bool:
        return self.family != "constant"

    @property
    def anneal_steps(self) -> int:
        """Steps before the final tau = 0 phase (all steps for ``constant``)."""
        if not self.annealed:
            return self.total_steps
        return max(1, round((1 - self.final_fraction) * self.total_steps))

    @property
    def start_tau(self) -> float:
        return self.breakpoints[0][1] if self.family == "piecewise" else self.tau_max

    def tau(self, step: int) -> float:
        """Temperature at fine-tuning step ``step`` in [0, total_steps)."""
        if self.family == "constant":
            return self.tau_max
        return max(self._annealed_tau(step), self.tau_end)

    def _annealed_tau(self, step: int) -> float:
        if step >= self.anneal_steps:
            return 0.0
        p = max(step, 0) / self.anneal_steps
        if self.family == "linear":
            return self.tau_max * (1 - p)
        if self.family == "cosine":
            return self.tau_max * 0.5 * (1 + math.cos(math.pi * p))
        if self.family == "exponential":
            return self.tau_max * math.exp(-self.rate * p)
        if self.family == "stages":
            k = min(int(p * self.stages), self.stages - 1)
            return self.tau_max * self.ratio**k
        ps, taus = zip(*self.breakpoints)
        return float(np.interp(p, ps, taus))

    def lam(self, step: int) -> float:
        """lambda(step) = tau / (1 + tau): the pretrained drift's weight in the blended target."""
        return lambda_of_tau(self.tau(step))

    def curve(self, points: int = 200) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(steps, tau, lambda) sampled across the run, for previews."""
        steps = np.unique(np.linspace(0, self.total_steps - 1, points).round().astype(int))
        taus = np.array([self.tau(int(s)) for s in steps])
        return steps, taus, taus / (1 + taus)

    def spec(self) -> str:
        """The spec string that parses back to this schedule."""
        if self.family in ("constant", "linear", "cosine"):
            return f"{self.family}:{self.tau_max:g}"
        if self.family == "exponential":
            return f"exponential:{self.tau_max:g},{self.rate:g}"
        if self.family == "stages":
            return f"stages:{self.tau_max:g},{self.ratio:g},{self.stages}"
        return "piecewise:" + ",".join(f"{p:g}/{t:g}" for p, t in self.breakpoints)


def _numbers(args: str, count: int, spec: str) -> list[float]:
    parts = [a for a in args.split(",") if a.strip()]
    if len(parts) != count:
        raise ValueError(f"schedule {spec!r}: expected {count} number(s) after ':', got {len(parts)}")
    try:
        values = [float(a) for a in parts]
    except ValueError:
        raise ValueError(f"schedule {spec!r}: {args!r} is not a list of numbers") from None
    if not all(math.isfinite(v) for v in values):
        raise ValueError(f"schedule {spec!r}: values must be finite")
    return values


def parse_schedule(spec: str, total_steps: int, final_fraction: float = 0.2, tau_end: float = 0.0) -> Schedule:
    """Parse a schedule spec such as ``stages:10,0.5,5`` (see the module docstring); ``tau_end`` is the stop temperature."""
    family, sep, args = spec.strip().partition(":")
    if not sep or family not in FAMILIES:
        raise ValueError(f"schedule {spec!r}: expected FAMILY:ARGS with FAMILY in {FAMILIES}")
    common = dict(family=family, total_steps=total_steps, final_fraction=final_fraction, tau_end=tau_end)
    if family in ("constant", "linear", "cosine"):
        (tau,) = _numbers(args, 1, spec)
        if tau < 0:
            raise ValueError(f"schedule {spec!r}: tau must be >= 0, got {tau:g}")
        return Schedule(tau_max=tau, **common)
    if family == "exponential":
        tau, rate = _numbers(args, 2, spec)
        return Schedule(tau_max=tau, rate=rate, **common)
    if family == "stages":
        tau, ratio, k = _numbers(args, 3, spec)
        if k != int(k):
            raise ValueError(f"schedule {spec!r}: K must be an integer, got {k:g}")
        return Schedule(tau_max=tau, ratio=ratio, stages=int(k), **common)
    points = []
    for item in args.split(","):
        p, slash, tau = item.partition("/")
        if not slash:
            raise ValueError(f"schedule {spec!r}: piecewise breakpoints are PROGRESS/TAU pairs")
        points.append(tuple(_numbers(f"{p},{tau}", 2, spec)))
    return Schedule(tau_max=max(t for _, t in points), breakpoints=tuple(points), **common)
