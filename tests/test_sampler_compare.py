"""The sampling panel's library side: real NFE per sampler, SDE at g = 0 equals Euler, the SDE refuses a
score it cannot trust, and bad specs name the field."""

from __future__ import annotations

import numpy as np
import pytest

from gft.core.checkpoints import load_checkpoint
from gft.data import sample_distribution
from gft.evaluation.sampler_compare import REFERENCE, SamplerSpec, run_sampler, sde_score
from tests.conftest import ROOT

TARGET = sample_distribution("moons", 800, seed=5).numpy()


@pytest.fixture(scope="module")
def moons():
    return load_checkpoint(ROOT / "assets" / "pretrained_moons.pt").model


def test_each_sampler_reports_its_real_nfe_and_is_close_to_the_target(moons):
    runs = {s.label: run_sampler(moons, s, TARGET, n=400, seed=0) for s in
            (SamplerSpec("euler", 4), SamplerSpec("midpoint", 4), REFERENCE)}
    assert runs["euler, 4 steps"].nfe == 4 and runs["midpoint, 4 steps"].nfe == 8
    assert runs["dopri5 (adaptive)"].nfe > 20  # adaptive: many more calls than the few-step samplers
    # The shipped moons model (OT-trained: straight paths) lands on the moons with every sampler: W2 within
    # 1.5x of two independent 400-point moons draws (about 0.4), far from another target's.
    assert all(r.w2 < 0.6 for r in runs.values()), {k: r.w2 for k, r in runs.items()}
    elsewhere = run_sampler(moons, REFERENCE, sample_distribution("8gaussians", 800, seed=5).numpy(), n=400, seed=0)
    assert elsewhere.w2 > 3 * runs["dopri5 (adaptive)"].w2
    assert runs["dopri5 (adaptive)"].paths.shape[1] == 60 and runs["dopri5 (adaptive)"].paths.shape[2] == 2


def test_sde_at_zero_diffusion_is_euler(moons):
    sde = run_sampler(moons, SamplerSpec("sde", 10, 0.0), TARGET, n=200, seed=3)
    euler = run_sampler(moons, SamplerSpec("euler", 10), TARGET, n=200, seed=3)
    np.testing.assert_allclose(sde.samples, euler.samples, atol=1e-6)
    assert sde.nfe == euler.nfe == 10


def test_sde_needs_a_score_it_can_trust(moons):
    assert sde_score(moons, {"sigma": 0.0, "coupling": "ot"}) is None
    assert sde_score(moons, {"sigma": 0.0, "coupling": "independent"}) == "identity"
    with pytest.raises(ValueError, match="score head"):
        run_sampler(moons, SamplerSpec("sde", 10, 1.0, "head"), TARGET, n=100)
    noisy = run_sampler(moons, SamplerSpec("sde", 20, 1.0, "identity"), TARGET, n=200, seed=0,
                        training={"sigma": 0.0, "coupling": "independent"})
    quiet = run_sampler(moons, SamplerSpec("sde", 20, 0.0, "identity"), TARGET, n=200, seed=0,
                        training={"sigma": 0.0, "coupling": "independent"})
    assert not np.allclose(noisy.samples, quiet.samples)  # g > 0 does add noise


@pytest.mark.parametrize("field, kwargs", [("solver", {"solver": "rk45"}), ("steps", {"steps": 0}),
                                           ("diffusion", {"diffusion": -1.0}), ("score", {"score": "guess"})])
def test_bad_specs_name_the_field(field, kwargs):
    with pytest.raises(ValueError, match=field):
        SamplerSpec(**kwargs)
