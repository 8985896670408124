"""Samplers from t = 0 (noise) to t = 1 (data) with exact counts of function evaluations (NFE).

Euler, Heun and midpoint are written by hand: they are a few lines, count NFE exactly and avoid
torchdiffeq's per-step overhead at 1 to 100 steps. ``dopri5`` (adaptive) and ``rk4`` go through
torchdiffeq, whose ``f(t, x)`` order is adapted here and nowhere else.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torchdiffeq import odeint

from gft.core.models import FlowModel

FIXED_SOLVERS = ("euler", "heun", "midpoint")
TORCHDIFFEQ_SOLVERS = ("dopri5", "rk4")
SOLVERS = FIXED_SOLVERS + TORCHDIFFEQ_SOLVERS + ("sde",)
MAX_STEPS = 10_000


@dataclass(frozen=True)
class SampleResult:
    """Terminal samples, the trajectory on the step grid (or None) and the real NFE."""

    x: torch.Tensor
    trajectory: torch.Tensor | None  # (steps + 1, n, *data_shape)
    nfe: int
    times: torch.Tensor  # (steps + 1,)


def _check_steps(steps: int) -> None:
    if not isinstance(steps, int) or not 1 <= steps <= MAX_STEPS:
        raise ValueError(f"steps must be an integer in [1, {MAX_STEPS}], got {steps!r}")


def _velocity(model: FlowModel, x: torch.Tensor, t: float) -> torch.Tensor:
    return model(x, torch.full((x.shape[0],), t, device=x.device, dtype=x.dtype))


@torch.no_grad()
def sample_ode(
    model: FlowModel,
    x0: torch.Tensor,
    solver: str = "euler",
    steps: int = 100,
    keep_trajectory: bool = False,
    atol: float = 1e-5,
    rtol: float = 1e-5,
) -> SampleResult:
    """Integrate ``dx/dt = model(x, t)`` from ``x0`` at t = 0 to t = 1."""
    _check_steps(steps)
    if solver not in FIXED_SOLVERS + TORCHDIFFEQ_SOLVERS:
        raise ValueError(f"ODE solver must be one of {FIXED_SOLVERS + TORCHDIFFEQ_SOLVERS}, got {solver!r}")
    was_training = model.training
    model.eval()
    try:
        times = torch.linspace(0.0, 1.0, steps + 1, device=x0.device, dtype=x0.dtype)
        if solver in TORCHDIFFEQ_SOLVERS:
            return _torchdiffeq(model, x0, solver, times, keep_trajectory, atol, rtol)
        return _fixed(model, x0, solver, times, keep_trajectory)
    finally:
        model.train(was_training)


def _fixed(model, x0, solver, times, keep_trajectory) -> SampleResult:
    x = x0
    traj = [x0] if keep_trajectory else None
    nfe = 0
    ts = times.tolist()
    for t, t_next in zip(ts[:-1], ts[1:]):
        h = t_next - t
        v = _velocity(model, x, t)
        if solver == "euler":
            x = x + h * v
            nfe += 1
        elif solver == "heun":
            x_pred = x + h * v
            x = x + 0.5 * h * (v + _velocity(model, x_pred, t_next))
            nfe += 2
        else:  # midpoint
            x = x + h * _velocity(model, x + 0.5 * h * v, t + 0.5 * h)
            nfe += 2
        if traj is not None:
            traj.append(x)
    return SampleResult(x, torch.stack(traj) if traj is not None else None, nfe, times)


def _torchdiffeq(model, x0, solver, times, keep_trajectory, atol, rtol) -> SampleResult:
    nfe = 0

    def f(t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        nonlocal nfe
        nfe += 1
        return model(x, t.expand(x.shape[0]))

    if solver == "dopri5":
        try:
            out = odeint(f, x0, times, method="dopri5", atol=atol, rtol=rtol)
        except AssertionError as exc:  # torchdiffeq asserts when the step size underflows
            raise RuntimeError(
                f"dopri5 could not integrate the model ({str(exc).splitlines()[0]}): its velocity is not finite "
                "or too stiff; try a fixed-step solver (euler, heun, midpoint, rk4)"
            ) from None
    else:
        out = odeint(f, x0, times, method="rk4", options={"step_size": float(times[1] - times[0])})
    return SampleResult(out[-1], out if keep_trajectory else None, nfe, times)


@torch.no_grad()
def sample_sde(
    model: FlowModel,
    x0: torch.Tensor,
    steps: int = 100,
    diffusion: float = 1.0,
    score: str = "head",
    generator: torch.Generator | None = None,
    keep_trajectory: bool = False,
    deterministic_tail: float = 0.05,
    training: dict | None = None,
) -> SampleResult:
    """Euler-Maruyama for ``dX = [v + g^2/2 s] dt + g dW``, which keeps the ODE's marginals.

    ``score='head'`` uses the model's learned score; ``'identity'`` uses ``s = (t v - x) / (1 - t)``,
    exact only for sigma = 0, the independent coupling and N(0, I) noise, so it is refused unless
    ``training`` (the checkpoint's ``sigma`` and ``coupling``) says so. Steps starting after
    ``1 - deterministic_tail`` use g = 0, where the score is singular. One network call per step.
    """
    _check_steps(steps)
    if not diffusion >= 0:
        raise ValueError(f"diffusion g must be >= 0, got {diffusion}")
    if not 0 <= deterministic_tail < 1:
        raise ValueError(f"deterministic_tail must be in [0, 1), got {deterministic_tail}")
    if score == "head":
        if not model.has_score and diffusion > 0:
            raise ValueError("this model has no score head; train with --score-head or use score='identity'")
    elif score == "identity":
        training = training or {}
        if training.get("sigma") != 0 or training.get("coupling") != "independent":
            raise ValueError(
                "the score identity s = (t v - x)/(1 - t) is exact only for sigma = 0 with the "
                f"independent coupling; this model was trained with {training or 'unknown settings'}"
            )
    else:
        raise ValueError(f"score must be 'head' or 'identity', got {score!r}")
    was_training = model.training
    model.eval()
    try:
        times = torch.linspace(0.0, 1.0, steps + 1, device=x0.device, dtype=x0.dtype)
        x = x0
        traj = [x0] if keep_trajectory else None
        ts = times.tolist()
        for t, t_next in zip(ts[:-1], ts[1:]):
            h = t_next - t
            tt = torch.full((x.shape[0],), t, device=x.device, dtype=x.dtype)
            g = diffusion if t < 1 - deterministic_tail else 0.0
            if g == 0:
                x = x + h * model(x, tt)
            else:
                if score == "head":
                    out = model.heads(x, tt)
                    v, s = out["velocity"], out["score"]
                else:
                    v = model(x, tt)
                    s = (t * v - x) / (1 - t)
                noise_ = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
                x = x + h * (v + 0.5 * g * g * s) + g * (h**0.5) * noise_
            if traj is not None:
                traj.append(x)
        return SampleResult(x, torch.stack(traj) if traj is not None else None, steps, times)
    finally:
        model.train(was_training)


def noise(n: int, data_shape: tuple[int, ...], seed: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """Source draws x0 ~ N(0, I), reproducible from ``seed`` on any device (drawn on the CPU)."""
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    g = torch.Generator().manual_seed(seed)
    return torch.randn((n, *data_shape), generator=g).to(device)
