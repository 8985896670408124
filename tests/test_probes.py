"""gft.evaluation.probes: the model evaluations behind the figures (drifts, fields, samples, digit grids,
coupled batches), checked against closed forms and the model itself."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gft.constants import SNAPSHOT_SEED_OFFSET
from gft.core.models import FlowModel, ModelConfig, build_seeded
from gft.evaluation import probes


class AffineFlow(FlowModel):
    """v(x, t) = a * t * x + b: a closed form to check the model evaluations against."""

    def __init__(self, a: float = 2.0, b: tuple[float, float] = (0.5, -1.0)) -> None:
        super().__init__()
        self.config = ModelConfig()
        self.a = torch.nn.Parameter(torch.tensor(a))
        self.register_buffer("b", torch.tensor(b))

    def heads(self, x, t):
        return {"velocity": self.a * t[:, None] * x + self.b}


def _tiny_mlp(seed: int = 0) -> FlowModel:
    return build_seeded(ModelConfig(width=16, depth=1, time_dim=8), seed)


# ---- drifts and fields ---------------------------------------------------------------------------
def test_drift_along_and_velocity_field_match_the_closed_form():
    model = AffineFlow(a=2.0, b=(0.5, -1.0))
    k, n = 4, 6
    traj = np.random.default_rng(2).normal(size=(k + 1, n, 2)).astype(np.float32)
    v = probes.drift_along(model, traj)
    t = np.linspace(0, 1, k + 1, dtype=np.float32)[:, None, None]
    np.testing.assert_allclose(v, 2.0 * t * traj + np.array([0.5, -1.0], np.float32), rtol=1e-6, atol=1e-6)
    grid, field = probes.velocity_field(model, [0.0, 0.5, 1.0], n=3, lim=2.0)
    assert grid.shape == (9, 2) and field.shape == (3, 9, 2)
    np.testing.assert_allclose(field[1], 1.0 * grid + np.array([0.5, -1.0]), atol=1e-6)
    with pytest.raises(ValueError, match="one time per row"):
        probes.drift_along(model, traj, times=[0.0, 1.0])


def test_model_trajectories_are_seeded_and_end_at_the_samples():
    model = AffineFlow()
    a = probes.model_trajectories(model, 50, seed=3, steps=10)
    b = probes.model_trajectories(model, 50, seed=3, steps=10)
    assert a.shape == (11, 50, 2) and a.dtype == np.float32
    np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(probes.model_samples(model, 50, seed=3, steps=10), a[-1], atol=1e-6)



def test_drift_along_a_network_is_the_network_at_each_row_time():
    model = _tiny_mlp().train()
    traj = np.random.default_rng(3).normal(size=(5, 7, 2)).astype(np.float32)
    times = [0.0, 0.1, 0.5, 0.9, 1.0]
    v = probes.drift_along(model, traj, times)
    assert v.shape == traj.shape and v.dtype == np.float32
    with torch.no_grad():
        model.eval()
        for k, t in enumerate(times):
            direct = model(torch.from_numpy(traj[k]), torch.full((7,), t)).numpy()
            np.testing.assert_allclose(v[k], direct, rtol=1e-5, atol=1e-6)
    assert model.train().training  # the probe restores the mode it found


def test_velocity_field_shapes_and_grid():
    grid, field = probes.velocity_field(_tiny_mlp(), [0.0, 0.25, 0.5, 1.0], n=4, lim=3.0)
    assert grid.shape == (16, 2) and field.shape == (4, 16, 2)
    assert grid.dtype == field.dtype == np.float32
    assert grid.min() == -3.0 and grid.max() == 3.0
    with pytest.raises(ValueError, match="n must be"):
        probes.grid_points(1)


# ---- digit grids ---------------------------------------------------------------------------------
def test_model_grid_samples_the_seeds_a_training_animation_follows():
    model = build_seeded(ModelConfig(kind="mlp", data_shape=(1, 8, 8), width=16, depth=1, time_dim=8), 0)
    grid = probes.model_grid(model, 5, seed=2, steps=3)
    assert grid.shape == (5, 1, 8, 8) and grid.dtype == np.float32
    np.testing.assert_array_equal(grid, probes.model_samples(model, 5, seed=2 + SNAPSHOT_SEED_OFFSET, steps=3))


def test_as_numpy_hands_viz_float32_arrays():
    a = probes.as_numpy(torch.arange(6, dtype=torch.float64).reshape(2, 3))
    assert isinstance(a, np.ndarray) and a.dtype == np.float32 and a.flags.c_contiguous


# ---- the blended target, drawn -------------------------------------------------------------------
def test_kernel_target_drift_is_exact_for_one_sample_and_points_at_the_nearest_cluster():
    from gft.evaluation.probes import target_drift_kernel

    x1 = np.array([[2.0, -1.0]], np.float32)
    x = np.random.default_rng(0).normal(size=(50, 2)).astype(np.float32)
    for t in (0.0, 0.3, 0.9):
        # one target sample: every path ends there, so the drift is (x1 - x) / (1 - t)
        np.testing.assert_allclose(target_drift_kernel(x1, x, t), (x1 - x) / (1 - t), rtol=1e-5, atol=1e-5)
    # two far clusters: near the end of time the drift at a point heads to its own cluster
    two = np.array([[3.0, 0.0], [-3.0, 0.0]], np.float32)
    v = target_drift_kernel(two, np.array([[2.5, 0.0], [-2.5, 0.0]], np.float32), 0.9)
    assert v[0, 0] > 0 and v[1, 0] < 0
    with pytest.raises(ValueError, match="t must be in"):
        target_drift_kernel(two, x, 1.5)


def test_blend_arrows_are_the_blend_of_target_and_f_pre_and_coincide_with_them_at_the_ends():
    from gft.evaluation.probes import blend, blend_arrows

    pre = build_seeded(ModelConfig(width=16, depth=1, time_dim=8), 0)
    rng = np.random.default_rng(1)
    traj = np.cumsum(rng.normal(size=(5, 30, 2)).astype(np.float32) * 0.3, axis=0)
    target = rng.normal(size=(200, 2)).astype(np.float32) + 2.0
    for lam in (0.0, 0.3, 0.8, 1.0):
        arrows = blend_arrows(pre, target, traj, lam, n=20)
        assert arrows.f_pre.shape == arrows.target.shape == arrows.learned.shape == (5, 20, 2)
        np.testing.assert_allclose(arrows.blend, (1 - lam) * arrows.target + lam * arrows.f_pre, rtol=1e-5, atol=1e-6)
    at0, at1 = blend_arrows(pre, target, traj, 0.0, n=20), blend_arrows(pre, target, traj, 1.0, n=20)
    np.testing.assert_allclose(at0.blend, at0.target, atol=1e-6)  # lambda = 0: plain flow matching on the target
    np.testing.assert_allclose(at1.blend, at1.f_pre, atol=1e-6)  # lambda = 1: the pretrained drift
    assert not np.allclose(at0.target, at0.f_pre, atol=1e-2)  # the two ends differ, so the checks above can fail
    np.testing.assert_allclose(at0.learned[:-1], (traj[1:, :20] - traj[:-1, :20]) * 4, rtol=1e-5)
    with pytest.raises(ValueError, match="lam must be in"):
        blend(at0.target, at0.f_pre, 1.5)
