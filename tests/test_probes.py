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
