"""The closed-form Gaussian oracle of GFT (method.md, fact 3) checked against first principles."""

from __future__ import annotations

import numpy as np
import pytest

from gft.theory.gaussian import (
    Gaussian,
    blended_velocity,
    blended_velocity_coeffs,
    gaussian_w2,
    lambda_of_tau,
    law_at,
    marginal_velocity_coeffs,
    mean_trajectory,
    particle_trajectories,
    terminal_law,
    time_grid,
)

PRE = Gaussian(np.array([-2.0, 0.5]), np.array([[0.5, 0.1], [0.1, 0.3]]))
TARGET = Gaussian(np.array([3.0, -1.0]), np.array([[2.0, -0.6], [-0.6, 0.8]]))


def assert_law_close(a: Gaussian, b: Gaussian, atol: float) -> None:
    np.testing.assert_allclose(a.mean, b.mean, atol=atol, rtol=0)
    np.testing.assert_allclose(a.cov, b.cov, atol=atol, rtol=0)


def test_lambda_of_tau_endpoints_and_monotone():
    assert lambda_of_tau(0.0) == 0.0
    assert lambda_of_tau(1.0) == 0.5
    assert lambda_of_tau(float("inf")) == 1.0
    lams = [lambda_of_tau(tau) for tau in (0.0, 0.1, 1.0, 10.0, 1e6)]
    assert all(x < y for x, y in zip(lams, lams[1:]))


def test_lam_zero_terminal_law_is_the_target():
    assert_law_close(terminal_law(PRE, TARGET, 0.0), TARGET, atol=1e-6)


@pytest.mark.parametrize("lam", [1.0, lambda_of_tau(1e9)])
def test_lam_one_terminal_law_is_the_pretrained(lam):
    assert_law_close(terminal_law(PRE, TARGET, lam), PRE, atol=1e-6)


def test_intermediate_lam_lies_strictly_between():
    law = terminal_law(PRE, TARGET, lambda_of_tau(1.0))
    assert gaussian_w2(law, TARGET) > 0.1 and gaussian_w2(law, PRE) > 0.1
    # W2 to the target grows with the weight of the pretrained drift.
    dists = [gaussian_w2(terminal_law(PRE, TARGET, lam, 400), TARGET) for lam in (0.0, 0.25, 0.5, 0.75)]
    assert all(x < y for x, y in zip(dists, dists[1:]))


@pytest.mark.parametrize("t", [0.0, 0.3, 0.7, 1.0])
def test_lam_zero_law_at_is_the_true_marginal(t):
    eye = np.eye(2)
    marginal = Gaussian(t * TARGET.mean, (1 - t) ** 2 * eye + t**2 * TARGET.cov)
    assert_law_close(law_at(PRE, TARGET, 0.0, t), marginal, atol=1e-6)


@pytest.mark.parametrize("t", [0.2, 0.5, 0.8])
def test_coeffs_match_monte_carlo_regression(t):
    rng = np.random.default_rng(0)
    n = 200_000
    x0 = rng.standard_normal((n, 2))
    x1 = TARGET.sample(n, rng)
    x_t = (1 - t) * x0 + t * x1
    design = np.hstack([x_t, np.ones((n, 1))])
    coef, *_ = np.linalg.lstsq(design, x1 - x0, rcond=None)
    a, b = marginal_velocity_coeffs(TARGET, t)
    np.testing.assert_allclose(coef[:2].T, a, atol=0.02, rtol=0)
    np.testing.assert_allclose(coef[2], b, atol=0.02, rtol=0)


def test_coeffs_at_endpoints():
    a0, b0 = marginal_velocity_coeffs(TARGET, 0.0)  # x_0 = x0, so E[x1 - x0 | x0] = mu - x0
    np.testing.assert_allclose(a0, -np.eye(2))
    np.testing.assert_allclose(b0, TARGET.mean)
    a1, b1 = marginal_velocity_coeffs(TARGET, 1.0)  # x_1 = x1, so E[x1 - x0 | x1] = x1
    np.testing.assert_allclose(a1, np.eye(2), atol=1e-12)
    np.testing.assert_allclose(b1, 0.0, atol=1e-12)


def test_blended_velocity_is_the_convex_combination():
    rng = np.random.default_rng(1)
    points = rng.standard_normal((50, 2)) * 3
    lam, t = 0.3, 0.6
    v_tgt = blended_velocity(points, PRE, TARGET, 0.0, t)
    v_pre = blended_velocity(points, PRE, TARGET, 1.0, t)
    v = blended_velocity(points, PRE, TARGET, lam, t)
    np.testing.assert_allclose(v, (1 - lam) * v_tgt + lam * v_pre, atol=1e-12)
    # Fact 1: the distance to the target drift is lam |v_pre - v_target|.
    np.testing.assert_allclose(
        np.linalg.norm(v - v_tgt, axis=1), lam * np.linalg.norm(v_pre - v_tgt, axis=1), atol=1e-12
    )
    a, b = blended_velocity_coeffs(PRE, TARGET, lam, t)
    np.testing.assert_allclose(v, points @ a.T + b, atol=1e-12)


@pytest.mark.parametrize("lam", [0.0, 0.3, 0.9])
def test_particles_end_at_the_terminal_law(lam):
    rng = np.random.default_rng(2)
    x0 = rng.standard_normal((2000, 2))
    # Whiten exactly: the flow map is affine, so the terminal sample moments are then exact too.
    x0 = x0 - x0.mean(axis=0)
    x0 = x0 @ np.linalg.inv(np.linalg.cholesky(np.cov(x0.T, bias=True))).T
    paths = particle_trajectories(x0, PRE, TARGET, lam, n_steps=200)
    assert paths.shape == (201, 2000, 2)
    np.testing.assert_array_equal(paths[0], x0)
    end = paths[-1]
    law = terminal_law(PRE, TARGET, lam)
    np.testing.assert_allclose(end.mean(axis=0), law.mean, atol=1e-6, rtol=0)
    np.testing.assert_allclose(np.cov(end.T, bias=True), law.cov, atol=1e-6, rtol=0)


def test_particles_from_raw_noise_match_within_sampling_error():
    rng = np.random.default_rng(3)
    end = particle_trajectories(rng.standard_normal((20_000, 2)), PRE, TARGET, 0.5, n_steps=50)[-1]
    law = terminal_law(PRE, TARGET, 0.5)
    np.testing.assert_allclose(end.mean(axis=0), law.mean, atol=0.05, rtol=0)
    np.testing.assert_allclose(np.cov(end.T), law.cov, atol=0.08, rtol=0)


def test_mean_trajectory_matches_law_at_on_the_grid():
    n_steps = 100
    means = mean_trajectory(PRE, TARGET, 0.4, n_steps)
    assert means.shape == (n_steps + 1, 2)
    np.testing.assert_allclose(means[0], 0.0)
    ts = time_grid(n_steps)
    k = 37
    np.testing.assert_allclose(means[k], law_at(PRE, TARGET, 0.4, ts[k], n_steps=k).mean, atol=1e-12)
    np.testing.assert_allclose(means[-1], terminal_law(PRE, TARGET, 0.4).mean, atol=1e-8)


def test_w2_identical_is_zero_and_symmetric():
    assert gaussian_w2(TARGET, TARGET) == pytest.approx(0.0, abs=1e-6)
    assert gaussian_w2(PRE, TARGET) == pytest.approx(gaussian_w2(TARGET, PRE), abs=1e-9)


def test_w2_equal_covariances_is_the_mean_distance():
    shifted = Gaussian(TARGET.mean + np.array([3.0, 4.0]), TARGET.cov)
    assert gaussian_w2(TARGET, shifted) == pytest.approx(5.0, abs=1e-6)


def test_w2_matches_the_2x2_trace_formula():
    # For 2x2 SPD M, tr sqrt(M) = sqrt(tr M + 2 sqrt(det M)); here M = B^1/2 A B^1/2 (non-commuting).
    cross = np.sqrt(np.trace(PRE.cov @ TARGET.cov) + 2 * np.sqrt(np.linalg.det(PRE.cov @ TARGET.cov)))
    bures = np.trace(PRE.cov) + np.trace(TARGET.cov) - 2 * cross
    expected = np.sqrt(np.sum((PRE.mean - TARGET.mean) ** 2) + bures)
    assert gaussian_w2(PRE, TARGET) == pytest.approx(expected, abs=1e-9)


def test_w2_is_invariant_under_a_common_rotation():
    a = Gaussian(np.zeros(2), np.diag([4.0, 1.0]))
    b = Gaussian(np.array([1.0, 0.0]), np.diag([1.0, 9.0]))
    c, s = np.cos(0.7), np.sin(0.7)
    rot = np.array([[c, -s], [s, c]])
    a_rot = Gaussian(rot @ a.mean, rot @ a.cov @ rot.T)
    b_rot = Gaussian(rot @ b.mean, rot @ b.cov @ rot.T)
    assert gaussian_w2(a_rot, b_rot) == pytest.approx(gaussian_w2(a, b), abs=1e-9)


def test_w2_diagonal_closed_form():
    a = Gaussian(np.zeros(2), np.diag([4.0, 1.0]))
    b = Gaussian(np.array([1.0, 0.0]), np.diag([1.0, 9.0]))
    expected = np.sqrt(1.0 + (2.0 - 1.0) ** 2 + (1.0 - 3.0) ** 2)
    assert gaussian_w2(a, b) == pytest.approx(expected, abs=1e-9)


@pytest.mark.parametrize(
    ("build", "field"),
    [
        (lambda: Gaussian(np.zeros((2, 1)), np.eye(2)), "mean"),
        (lambda: Gaussian(np.array([0.0, np.nan]), np.eye(2)), "mean"),
        (lambda: Gaussian(np.zeros(2), np.eye(3)), "cov"),
        (lambda: Gaussian(np.zeros(2), np.array([[1.0, 0.5], [0.0, 1.0]])), "cov"),
        (lambda: Gaussian(np.zeros(2), np.array([[1.0, 2.0], [2.0, 1.0]])), "cov"),
        (lambda: lambda_of_tau(-0.1), "tau"),
        (lambda: lambda_of_tau(float("nan")), "tau"),
        (lambda: marginal_velocity_coeffs(TARGET, 1.5), "t"),
        (lambda: marginal_velocity_coeffs(TARGET, -0.01), "t"),
        (lambda: blended_velocity_coeffs(PRE, TARGET, 1.2, 0.5), "lam"),
        (lambda: blended_velocity_coeffs(PRE, Gaussian(np.zeros(3), np.eye(3)), 0.5, 0.5), "dimension"),
        (lambda: blended_velocity(np.zeros((4, 3)), PRE, TARGET, 0.5, 0.5), "points"),
        (lambda: terminal_law(PRE, TARGET, 0.5, n_steps=0), "n_steps"),
        (lambda: law_at(PRE, TARGET, 0.5, 2.0), "t"),
        (lambda: particle_trajectories(np.zeros(2), PRE, TARGET, 0.5), "x0"),
        (lambda: gaussian_w2(PRE, Gaussian(np.zeros(1), np.eye(1))), "dimension"),
    ],
)
def test_bad_inputs_raise_value_error_naming_the_field(build, field):
    with pytest.raises(ValueError, match=field):
        build()


def test_gaussian_is_float64_and_read_only():
    g = Gaussian([1, 2], [[2, 0], [0, 1]])
    assert g.mean.dtype == np.float64 and g.cov.dtype == np.float64
    with pytest.raises(ValueError):
        g.mean[0] = 5.0


def test_annealing_trail_walks_from_the_pretrained_law_to_the_target():
    from gft.theory.exact_annealing import annealing_trail, gaussian_2d

    pre, target = gaussian_2d((-2.0, 0.0), "small"), gaussian_2d((2.0, 1.0), "tilted")
    trail = annealing_trail(pre, target)
    assert [s.tau for s in trail][0] == float("inf") and trail[-1].tau == 0.0
    assert [s.lam for s in trail] == sorted((s.lam for s in trail), reverse=True)  # hot to cold
    np.testing.assert_allclose(trail[0].law.mean, pre.mean, atol=1e-6)
    np.testing.assert_allclose(trail[0].law.cov, pre.cov, atol=1e-6)
    np.testing.assert_allclose(trail[-1].law.mean, target.mean, atol=1e-6)
    np.testing.assert_allclose(trail[-1].law.cov, target.cov, atol=1e-6)
    # the shapes differ, so the middle stops are not the lambda-mix of the means (the page's lesson)
    mid = trail[4]  # tau = 1
    assert np.linalg.norm(mid.law.mean - (0.5 * pre.mean + 0.5 * target.mean)) > 0.01
