"""Invariants of the building blocks: couplings, W2, schedules, samplers, the path and the blend."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.optimize import linear_sum_assignment

from gft.core.couplings import Coupling, ot_permutation, pairing_cost, squared_cost
from gft.core.models import FlowModel, MLPFlow, ModelConfig
from gft.core.objectives import blended_target
from gft.core.paths import GaussianPath
from gft.core.sampling import sample_ode, sample_sde
from gft.core.schedules import FAMILIES, Schedule, lambda_of_tau, parse_schedule
from gft.evaluation.metrics import wasserstein2


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _small_model(seed: int = 0, score_head: bool = False) -> MLPFlow:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return MLPFlow(ModelConfig(width=32, depth=2, score_head=score_head))


# ---------------------------------------------------------------- couplings


@pytest.mark.parametrize("seed", range(4))
def test_ot_pairing_is_an_optimal_permutation(seed):
    g = _gen(seed)
    x0 = torch.randn(128, 2, generator=g)
    x1 = torch.randn(128, 2, generator=g) * 2 + torch.tensor([3.0, -1.0])
    p0, p1 = Coupling("ot").pair(x0, x1)
    assert p0 is x0
    # x1 is reordered, never resampled: same multiset of rows.
    assert torch.equal(torch.sort(p1[:, 0]).values, torch.sort(x1[:, 0]).values)
    ot_cost = pairing_cost(p0, p1)
    assert ot_cost <= pairing_cost(x0, x1) + 1e-9
    for k in range(20):
        perm = torch.randperm(128, generator=g)
        assert ot_cost <= pairing_cost(x0, x1[perm]) + 1e-9
    # Matches an independent exact assignment solver.
    rows, cols = linear_sum_assignment(squared_cost(x0, x1))
    assert ot_cost == pytest.approx(float(squared_cost(x0, x1)[rows, cols].mean()), rel=1e-6)
    assert ot_cost < 0.9 * pairing_cost(x0, x1)  # OT is much better than the arbitrary pairing


def test_ot_recovers_a_shuffled_copy_exactly():
    g = _gen(1)
    x0 = torch.randn(200, 2, generator=g)
    perm = torch.randperm(200, generator=g)
    _, p1 = Coupling("ot").pair(x0, x0[perm])
    assert torch.equal(p1, x0)


def test_ot_permutation_refuses_unequal_batches():
    with pytest.raises(ValueError, match="equal batch sizes"):
        ot_permutation(np.ones((3, 4)))


def test_sinkhorn_keeps_x0_and_returns_rows_of_x1():
    g = _gen(2)
    x0 = torch.randn(64, 2, generator=g)
    x1 = torch.randn(64, 2, generator=g) + 2.0
    p0, p1 = Coupling("sinkhorn", reg=0.05).pair(x0, x1, _gen(3))
    assert p0 is x0
    assert p1.shape == x1.shape
    # Every returned row is one of x1's rows (a partner drawn from the plan, not an average).
    assert (p1[:, None, :] == x1[None, :, :]).all(dim=2).any(dim=1).all()
    # At small regularisation it pairs nearly as well as exact OT and far better than as drawn.
    ot_cost = pairing_cost(*Coupling("ot").pair(x0, x1))
    assert pairing_cost(p0, p1) < ot_cost + 0.5 * (pairing_cost(x0, x1) - ot_cost)


def test_coupling_rejects_unknown_kind_and_bad_reg():
    with pytest.raises(ValueError, match="coupling"):
        Coupling("hungarian")
    with pytest.raises(ValueError, match="reg"):
        Coupling("sinkhorn", reg=0.0)


# ---------------------------------------------------------------- W2


def test_w2_of_a_set_with_itself_is_zero():
    x = torch.randn(500, 2, generator=_gen(4))
    assert wasserstein2(x, x) == pytest.approx(0.0, abs=1e-6)


def test_w2_of_a_translated_set_is_the_shift():
    x = torch.randn(500, 2, generator=_gen(5))
    shift = torch.tensor([3.0, -4.0])  # |shift| = 5
    # A translation is optimally matched to itself: exactly the shift's length.
    assert wasserstein2(x, x + shift) == pytest.approx(5.0, rel=1e-5)
    # Independent draws: the shift plus a finite-sample floor that is small beside it.
    y = torch.randn(1000, 2, generator=_gen(6)) + shift
    x2 = torch.randn(1000, 2, generator=_gen(7))
    floor = wasserstein2(x2, torch.randn(1000, 2, generator=_gen(8)))
    w = wasserstein2(x2, y)
    assert floor < 0.3
    assert abs(w - 5.0) < 0.15
    # Jensen: W2 is at least the distance between the means, for any two samples.
    assert w >= float((x2.mean(0) - y.mean(0)).norm()) - 1e-6


def test_w2_of_non_finite_samples_is_inf():
    x = torch.randn(50, 2, generator=_gen(9))
    y = x.clone()
    y[3, 0] = float("nan")
    assert wasserstein2(x, y) == float("inf")


# ---------------------------------------------------------------- schedules

ANNEALED_SPECS = [
    "linear:4",
    "cosine:4",
    "exponential:4,3",
    "stages:4,0.5,4",
    "piecewise:0/4,0.3/6,1/0.5",
]


@pytest.mark.parametrize("spec", ANNEALED_SPECS)
@pytest.mark.parametrize("final_fraction", [0.2, 0.35])
def test_annealed_schedules_start_at_tau_max_and_end_at_zero(spec, final_fraction):
    total = 1000
    s = parse_schedule(spec, total, final_fraction)
    assert s.tau(0) == s.start_tau == 4.0  # piecewise: its first breakpoint, not its maximum (6)
    taus = np.array([s.tau(k) for k in range(total)])
    n_zero_tail = round(final_fraction * total)
    assert np.all(taus[total - n_zero_tail :] == 0.0), "the final fraction must train at exactly tau = 0"
    assert np.all(taus[: total - n_zero_tail] > 0), "the annealed part must still hold the pretrained drift"
    lams = np.array([s.lam(k) for k in range(total)])
    np.testing.assert_allclose(lams, taus / (1 + taus))
    assert np.all((lams >= 0) & (lams < 1))
    if s.family != "piecewise":
        assert np.all(np.diff(taus) <= 0), "annealing must never raise the temperature"


def test_piecewise_follows_its_breakpoints():
    s = parse_schedule("piecewise:0/4,0.3/6,1/0.5", 1000, 0.2)
    # Progress runs through the 800 annealed steps: 0.3 -> step 240, 0.65 -> step 520.
    assert s.tau(240) == pytest.approx(6.0)
    assert s.tau(520) == pytest.approx(0.5 * (6.0 + 0.5))
    assert max(s.tau(k) for k in range(1000)) == pytest.approx(6.0)


def test_stages_are_geometric_and_equal_length():
    s = parse_schedule("stages:8,0.5,4", 1000, 0.2)
    taus = [s.tau(k) for k in range(800)]
    assert sorted(set(taus), reverse=True) == [8.0, 4.0, 2.0, 1.0]
    assert all(taus.count(v) == 200 for v in (8.0, 4.0, 2.0, 1.0))


@pytest.mark.parametrize("tau", [0.0, 0.5, 1.0, 7.0])
def test_constant_schedule_stays_constant(tau):
    s = parse_schedule(f"constant:{tau}", 500, 0.2)
    assert {s.tau(k) for k in range(500)} == {tau}
    assert {s.lam(k) for k in range(500)} == {tau / (1 + tau)}


def test_constant_one_gives_lambda_exactly_one_half():
    s = parse_schedule("constant:1.0", 10)
    assert s.lam(0) == 0.5 and s.lam(9) == 0.5
    assert lambda_of_tau(1.0) == 0.5 and lambda_of_tau(0.0) == 0.0


@pytest.mark.parametrize(
    "spec",
    ["constant:0", "constant:2.5", "linear:10", "cosine:3", "exponential:10,5", "stages:10,0.5,5", "piecewise:0/5,0.5/1,1/0"],
)
def test_schedule_spec_round_trip(spec):
    s = parse_schedule(spec, 300, 0.25)
    assert s.spec() == spec
    again = parse_schedule(s.spec(), 300, 0.25)
    assert again == s
    assert again.spec() == spec


def test_every_family_has_a_parseable_spec():
    examples = {"constant": "constant:1", "linear": "linear:1", "cosine": "cosine:1", "exponential": "exponential:1,2",
                "stages": "stages:1,0.5,2", "piecewise": "piecewise:0/1,1/0"}
    assert set(examples) == set(FAMILIES)
    for family, spec in examples.items():
        assert parse_schedule(spec, 10).family == family


@pytest.mark.parametrize(
    "spec",
    [
        "constant:-1",
        "linear:-0.5",
        "cosine:-2",
        "constant",  # no arguments
        "constant:abc",
        "linear:1,2",  # too many numbers
        "exponential:3",  # missing rate
        "stages:10,1.0,5",  # ratio >= 1
        "stages:10,1.5,5",
        "stages:10,0.5,0",  # K = 0
        "stages:10,0.5,2.5",  # K not an integer
        "linear:0",  # an annealed schedule needs tau_max > 0
        "constant:nan",
        "constant:inf",
        "warmup:1",  # unknown family
        "piecewise:0/1,1",  # malformed breakpoint
        "piecewise:0.2/1,1/0",  # does not start at progress 0
        "piecewise:0/1,0.5/-1,1/0",  # negative tau
        "",
    ],
)
def test_bad_schedule_specs_raise_value_error(spec):
    with pytest.raises(ValueError):
        parse_schedule(spec, 100)


def test_bad_schedule_fields_raise_value_error():
    with pytest.raises(ValueError, match="total_steps"):
        Schedule("linear", 0)
    with pytest.raises(ValueError, match="final_fraction"):
        parse_schedule("linear:1", 100, final_fraction=1.0)


# ---------------------------------------------------------------- samplers


class _CountingModel(FlowModel):
    """A smooth analytic field that counts its own evaluations."""

    def __init__(self) -> None:
        super().__init__()
        self.config = ModelConfig()
        self.calls = 0

    def heads(self, x: torch.Tensor, t: torch.Tensor) -> dict[str, torch.Tensor]:
        self.calls += 1
        return {"velocity": torch.stack([-x[:, 1], x[:, 0]], dim=1) * (1 + t[:, None])}


@pytest.mark.parametrize("solver,per_step", [("euler", 1), ("heun", 2), ("midpoint", 2), ("rk4", 4)])
@pytest.mark.parametrize("steps", [1, 3, 8])
def test_fixed_step_nfe_is_exact(solver, per_step, steps):
    model = _CountingModel()
    res = sample_ode(model, torch.randn(5, 2, generator=_gen(0)), solver, steps)
    assert res.nfe == per_step * steps == model.calls


def test_dopri5_reports_its_real_nfe_and_is_accurate():
    model = _CountingModel()
    x0 = torch.randn(6, 2, generator=_gen(1), dtype=torch.float64)
    res = sample_ode(model, x0, "dopri5", 1, atol=1e-9, rtol=1e-9)
    assert res.nfe > 0 and res.nfe == model.calls
    # dx/dt = (1 + t) J x is a rotation by the angle int_0^1 (1 + t) dt = 1.5.
    c, s = math.cos(1.5), math.sin(1.5)
    exact = torch.stack([c * x0[:, 0] - s * x0[:, 1], s * x0[:, 0] + c * x0[:, 1]], dim=1)
    torch.testing.assert_close(res.x, exact, atol=1e-6, rtol=0)
    # ... and a coarse Euler solve is visibly worse: the comparison can fail.
    assert (sample_ode(_CountingModel(), x0, "euler", 4).x - exact).abs().max() > 1e-2


def test_trajectory_shape_and_endpoints():
    x0 = torch.randn(7, 2, generator=_gen(2))
    res = sample_ode(_CountingModel(), x0, "heun", 5, keep_trajectory=True)
    assert res.trajectory.shape == (6, 7, 2)
    assert torch.equal(res.trajectory[0], x0) and torch.equal(res.trajectory[-1], res.x)
    assert res.times[0] == 0.0 and res.times[-1] == 1.0


def test_sde_with_zero_diffusion_equals_the_euler_ode():
    model = _small_model(3)
    x0 = torch.randn(50, 2, generator=_gen(3))
    ode = sample_ode(model, x0, "euler", 12, keep_trajectory=True)
    sde = sample_sde(model, x0, 12, diffusion=0.0, generator=_gen(4), keep_trajectory=True)
    assert torch.equal(sde.x, ode.x)
    assert torch.equal(sde.trajectory, ode.trajectory)
    assert sde.nfe == ode.nfe == 12


def test_sde_with_diffusion_is_seeded_and_random():
    model = _small_model(3)
    x0 = torch.randn(50, 2, generator=_gen(3))
    training = {"sigma": 0.0, "coupling": "independent"}
    a = sample_sde(model, x0, 10, 1.0, "identity", _gen(5), training=training).x
    b = sample_sde(model, x0, 10, 1.0, "identity", _gen(5), training=training).x
    c = sample_sde(model, x0, 10, 1.0, "identity", _gen(6), training=training).x
    assert torch.equal(a, b)
    assert not torch.allclose(a, c)


@pytest.mark.parametrize(
    "training",
    [
        {"sigma": 0.0, "coupling": "ot"},
        {"sigma": 0.0, "coupling": "sinkhorn"},
        {"sigma": 0.5, "coupling": "independent"},
        None,  # unknown provenance
    ],
)
def test_score_identity_is_refused_where_it_is_invalid(training):
    model = _small_model()
    with pytest.raises(ValueError, match="identity"):
        sample_sde(model, torch.zeros(4, 2), 5, 1.0, "identity", _gen(0), training=training)


def test_score_head_is_required_for_head_score_sampling():
    with pytest.raises(ValueError, match="score head"):
        sample_sde(_small_model(), torch.zeros(4, 2), 5, 1.0, "head", _gen(0))
    res = sample_sde(_small_model(score_head=True), torch.zeros(4, 2), 5, 1.0, "head", _gen(0))
    assert torch.isfinite(res.x).all()


@pytest.mark.parametrize("steps", [0, -1, 2.5])
def test_samplers_refuse_bad_step_counts(steps):
    with pytest.raises(ValueError, match="steps"):
        sample_ode(_CountingModel(), torch.zeros(2, 2), "euler", steps)
    with pytest.raises(ValueError, match="steps"):
        sample_sde(_CountingModel(), torch.zeros(2, 2), steps, 0.0)


def test_unknown_solver_is_refused():
    with pytest.raises(ValueError, match="solver"):
        sample_ode(_CountingModel(), torch.zeros(2, 2), "rk45", 4)


# ---------------------------------------------------------------- path


def test_deterministic_path_targets_and_endpoints():
    g = _gen(10)
    x0, x1 = torch.randn(32, 2, generator=g), torch.randn(32, 2, generator=g) + 3
    path = GaussianPath(0.0)
    at0 = path.sample(x0, x1, torch.zeros(32))
    at1 = path.sample(x0, x1, torch.ones(32))
    assert torch.equal(at0.x_t, x0) and torch.equal(at1.x_t, x1)
    t = torch.rand(32, generator=g)
    mid = path.sample(x0, x1, t)
    assert torch.equal(mid.velocity, x1 - x0)
    torch.testing.assert_close(mid.x_t, x0 + t[:, None] * (x1 - x0))
    # Independent coupling: the conditional score given x1 is -x0 / (1 - t).
    torch.testing.assert_close(mid.score, -x0 / (1 - t[:, None]))
    assert path.sample(x0, x1, t, independent=False).score is None


def test_stochastic_path_velocity_is_the_time_derivative_of_the_interpolant():
    g = _gen(11)
    x0 = torch.randn(16, 2, generator=g, dtype=torch.float64)
    x1 = torch.randn(16, 2, generator=g, dtype=torch.float64) * 2 + 1
    path = GaussianPath(0.7)
    t = torch.rand(16, generator=g, dtype=torch.float64) * 0.8 + 0.1
    h = 1e-6

    def at(tt):  # the same eps at every t: the generator is re-seeded
        return path.sample(x0, x1, tt, generator=_gen(12))

    ps = at(t)
    fd = (at(t + h).x_t - at(t - h).x_t) / (2 * h)
    torch.testing.assert_close(ps.velocity, fd, atol=1e-6, rtol=1e-6)
    # Level and score: x_t - mean = sigma_t eps and score = -eps / sigma_t.
    sigma_t = 0.7 * torch.sqrt(t * (1 - t))[:, None]
    eps = (ps.x_t - ((1 - t[:, None]) * x0 + t[:, None] * x1)) / sigma_t
    torch.testing.assert_close(ps.score, -eps / sigma_t)
    torch.testing.assert_close(ps.score_scale, sigma_t.expand_as(x0))
    assert eps.std() > 0.5  # eps really is noise, not zero
    # Removing the bridge term would fail: the sigma_t' eps term is far from negligible.
    assert (ps.velocity - (x1 - x0)).abs().max() > 0.1


def test_path_rejects_bad_sigma():
    with pytest.raises(ValueError, match="sigma"):
        GaussianPath(-0.1)
    with pytest.raises(ValueError, match="sigma"):
        GaussianPath(float("nan"))


# ---------------------------------------------------------------- blend


def test_blended_target_at_lambda_zero_is_the_flow_matching_target():
    y = torch.randn(10, 2, generator=_gen(13))
    f = torch.randn(10, 2, generator=_gen(14))
    assert torch.equal(blended_target(y, f, 0.0), y)
    assert torch.equal(blended_target(y, None, 0.0), y)


@pytest.mark.parametrize("lam", [0.25, 0.5, 0.9])
def test_blended_target_is_a_convex_combination(lam):
    y = torch.randn(100, 2, generator=_gen(15))
    f = torch.randn(100, 2, generator=_gen(16)) * 3
    b = blended_target(y, f, lam)
    torch.testing.assert_close(b, (1 - lam) * y + lam * f)
    lo, hi = torch.minimum(y, f), torch.maximum(y, f)
    assert torch.all(b >= lo - 1e-6) and torch.all(b <= hi + 1e-6)
    # The weight sits on the pretrained drift: b - y = lam (f - y).
    torch.testing.assert_close(b - y, lam * (f - y))


@pytest.mark.parametrize("lam", [-0.1, 1.0, 1.5])
def test_blended_target_rejects_lambda_outside_unit_interval(lam):
    with pytest.raises(ValueError, match="lambda"):
        blended_target(torch.zeros(2, 2), torch.zeros(2, 2), lam)


def test_blended_target_needs_the_pretrained_drift():
    with pytest.raises(ValueError, match="f_pre"):
        blended_target(torch.zeros(2, 2), None, 0.3)
