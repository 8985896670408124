"""The one time convention (gft/__init__.py): t = 0 is noise N(0, I), t = 1 is data; ``model(x, t)``;
samplers integrate from t = 0 to t = 1; torchdiffeq's ``f(t, x)`` is adapted in gft/core/sampling.py only.

Each test uses a field whose answer is known in closed form and differs under the plausible mistakes
(time reversed, integrating 1 -> 0, arguments swapped), so it can fail.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import pytest
import torch

from gft.core.couplings import Coupling
from gft.core.models import FlowModel, ModelConfig
from gft.core.objectives import GFTObjective
from gft.core.paths import GaussianPath
from gft.core.sampling import FIXED_SOLVERS, TORCHDIFFEQ_SOLVERS, noise, sample_ode, sample_sde

ROOT = Path(__file__).resolve().parents[1]
C = torch.tensor([1.0, -2.0], dtype=torch.float64)
E = math.e


class LinearField(FlowModel):
    """``v(x, t) = x + t c``: it checks the argument order and records every time it is called at.

    From x0 at t = 0 the flow reaches ``x(1) = e x0 + (e - 2) c``. With time reversed inside the
    sampler (``v(x, 1 - t)``) it would reach ``e x0 + c``; integrated from 1 to 0 it would reach
    ``x0 / e + ...``: every mistake moves the endpoint by at least ``0.28 |c|``.
    """

    def __init__(self) -> None:
        super().__init__()
        self.config = ModelConfig()
        self.times: list[float] = []

    def heads(self, x: torch.Tensor, t: torch.Tensor) -> dict[str, torch.Tensor]:
        assert x.dim() == 2 and x.shape[1] == 2, f"x must be (B, 2), got {tuple(x.shape)}"
        assert t.shape == (x.shape[0],), f"t must be (B,) for x of {tuple(x.shape)}, got {tuple(t.shape)}"
        assert bool((t == t[0]).all()), "one time per solver stage"
        self.times.append(float(t[0]))
        return {"velocity": x + t[:, None] * C.to(x.dtype)}


def exact_endpoint(x0: torch.Tensor) -> torch.Tensor:
    return E * x0 + (E - 2) * C


# Steps and tolerance per solver: its global error on this field is a few times below the tolerance
# (Euler is first order), and the tolerance is >= 30x below the smallest miss of a wrong convention.
SOLVER_STEPS = {"euler": (500, 2e-2), "heun": (100, 1e-3), "midpoint": (100, 1e-3), "rk4": (20, 1e-3), "dopri5": (1, 1e-3)}


@pytest.mark.parametrize("solver", FIXED_SOLVERS + TORCHDIFFEQ_SOLVERS)
def test_every_solver_integrates_a_known_field_from_t0_to_t1(solver):
    x0 = torch.randn(16, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    model = LinearField()
    steps, tol = SOLVER_STEPS[solver]
    res = sample_ode(model, x0, solver, steps)
    torch.testing.assert_close(res.x, exact_endpoint(x0), atol=tol, rtol=0)
    # The plausible mistakes land far away (>= 0.28 |c| = 0.6 in some coordinate): the check can fail.
    reversed_time = E * x0 + C
    assert (res.x - reversed_time).abs().max() > 0.5
    # The first evaluation is at the noise end, and time only moves forward.
    # (dopri5 may try stages past t = 1 and interpolate back; the fixed-step solvers never leave [0, 1].)
    assert model.times[0] == 0.0
    if solver in FIXED_SOLVERS:
        assert model.times == sorted(model.times) and model.times[-1] <= 1.0
    assert res.times[0] == 0.0 and res.times[-1] == 1.0


def test_sde_without_diffusion_is_the_euler_flow_from_t0_to_t1():
    x0 = torch.randn(16, 2, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    res = sample_sde(LinearField(), x0, 500, diffusion=0.0)
    torch.testing.assert_close(res.x, exact_endpoint(x0), atol=2e-2, rtol=0)


def test_the_path_runs_from_noise_at_t0_to_data_at_t1():
    g = torch.Generator().manual_seed(2)
    x0, x1 = torch.randn(64, 2, generator=g), torch.randn(64, 2, generator=g) + 5.0
    for sigma in (0.0, 0.5):
        path = GaussianPath(sigma)
        at0 = path.sample(x0, x1, torch.zeros(64), g)
        at1 = path.sample(x0, x1, torch.ones(64), g)
        # sigma_t -> 0 at both ends (t is clamped 1e-4 inside them for sigma > 0: |x_t - x| ~ 0.005 |eps|)
        tol = 1e-6 if sigma == 0 else 0.05
        torch.testing.assert_close(at0.x_t, x0, atol=tol, rtol=0)
        torch.testing.assert_close(at1.x_t, x1, atol=tol, rtol=0)
        mid = path.sample(x0, x1, torch.full((64,), 0.5), g)
        if sigma == 0:
            torch.testing.assert_close(mid.x_t, 0.5 * (x0 + x1))
            torch.testing.assert_close(mid.velocity, x1 - x0)  # the velocity points from noise to data


class SpyModel(FlowModel):
    """Returns zero and remembers what it was called with."""

    def __init__(self) -> None:
        super().__init__()
        self.config = ModelConfig()
        self.anchor = torch.nn.Parameter(torch.zeros(()))
        self.calls: list[tuple[torch.Tensor, torch.Tensor]] = []

    def heads(self, x: torch.Tensor, t: torch.Tensor) -> dict[str, torch.Tensor]:
        self.calls.append((x.detach().clone(), t.detach().clone()))
        return {"velocity": torch.zeros_like(x) + 0 * self.anchor}


def test_the_objective_calls_model_x_t_and_regresses_onto_data_minus_noise():
    g = torch.Generator().manual_seed(3)
    x0, x1 = torch.randn(256, 2, generator=g), torch.randn(256, 2, generator=g) * 0.1 + torch.tensor([4.0, -3.0])
    objective = GFTObjective(GaussianPath(0.0), Coupling("independent"))
    spy = SpyModel()
    value = objective.loss(spy, x0, x1, 0.0, torch.Generator().manual_seed(4))
    (x, t), = spy.calls
    assert x.shape == (256, 2) and t.shape == (256,) and bool(((t >= 0) & (t <= 1)).all())
    # x is the point on the path at t, with t = 0 at the noise end.
    torch.testing.assert_close(x, (1 - t[:, None]) * x0 + t[:, None] * x1)
    # A zero prediction's loss is |x1 - x0|^2: the target is the noise-to-data velocity.
    assert value.velocity == pytest.approx(float(((x1 - x0) ** 2).sum(1).mean()), rel=1e-5)


def test_noise_is_standard_normal_and_seeded():
    a, b = noise(20_000, (2,), seed=5), noise(20_000, (2,), seed=5)
    assert torch.equal(a, b) and not torch.equal(a, noise(20_000, (2,), seed=6))
    assert a.mean(0).abs().max() < 0.03  # 4 standard errors
    torch.testing.assert_close(torch.cov(a.T), torch.eye(2), atol=0.04, rtol=0)


def test_torchdiffeq_is_used_in_gft_core_sampling_only():
    users = []
    for path in sorted((ROOT / "gft").rglob("*.py")):
        code = "\n".join(line.split("#", 1)[0] for line in path.read_text().splitlines())
        if re.search(r"^\s*(from|import)\s+torchdiffeq\b|\bodeint\s*\(", code, re.MULTILINE):
            users.append(path.relative_to(ROOT).as_posix())
    assert users == ["gft/core/sampling.py"]
