"""GFT end to end against its closed form: Gaussian -> Gaussian at a constant temperature.

The pretrained model is the exact marginal velocity of the source Gaussian (so no pretraining error
enters); a real MLP is fine-tuned with the Trainer at ``constant:TAU`` on samples of the target
Gaussian. Its terminal law must match ``gft.theory.gaussian.terminal_law`` at ``lambda = tau / (1 + tau)``,
within a tolerance that the plausible wrong methods (another lambda mapping, blending laws instead of
drifts) miss by several times.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gft.core.models import MLPFlow, ModelConfig
from gft.core.sampling import noise, sample_ode, sample_sde
from gft.core.training import TrainConfig, Trainer
from gft.theory.gaussian import Gaussian, marginal_velocity_coeffs, terminal_law

PRE = Gaussian(np.array([-2.0, 1.0]), np.array([[0.4, 0.15], [0.15, 0.3]]))
TARGET = Gaussian(np.array([2.0, -1.0]), np.array([[1.5, -0.5], [-0.5, 1.0]]))
CONFIG = ModelConfig(width=64, depth=3)
STEPS, BATCH, LR, N_SAMPLES = 1500, 512, 2e-3, 20_000
# Second order, 50 NFE: its error on the exact pretrained field is checked below to be negligible.
SOLVER, SOLVER_STEPS = "heun", 25
# Max abs error allowed on any entry of the mean and of the covariance.
MEAN_TOL, COV_TOL = 0.1, 0.1


class AnalyticGaussianFlow(MLPFlow):
    """The exact marginal velocity ``A(t) x + b(t)`` of ``N(0, I) -> N(mu, S)``, in torch.

    It subclasses MLPFlow only so that it shares the fine-tuned MLP's config; GFT starts from a random
    MLP (``init``) and regresses towards this exact drift.
    """

    def __init__(self, config: ModelConfig, law: Gaussian) -> None:
        super().__init__(config)
        self.register_buffer("mu", torch.tensor(law.mean), persistent=False)
        self.register_buffer("cov", torch.tensor(law.cov), persistent=False)

    def heads(self, x: torch.Tensor, t: torch.Tensor) -> dict[str, torch.Tensor]:
        tt = t.double()[:, None, None]
        eye = torch.eye(2, dtype=torch.float64)
        sigma_t = (1 - tt) ** 2 * eye + tt**2 * self.cov
        c_t = tt * self.cov - (1 - tt) * eye
        a = torch.linalg.solve(sigma_t, c_t)
        b = self.mu - t.double()[:, None] * (a @ self.mu)
        v = (a @ x.double()[:, :, None]).squeeze(2) + b
        return {"velocity": v.to(x.dtype)}


@pytest.fixture(autouse=True)
def _few_threads():
    # One thread: on a shared 2-core machine two OpenMP threads stall each other on small ops.
    torch.set_num_threads(1)
    yield


def test_analytic_pretrained_matches_the_numpy_oracle():
    model = AnalyticGaussianFlow(CONFIG, PRE)
    x = torch.tensor([[0.3, -1.2], [2.0, 0.5]], dtype=torch.float64)
    for t in (0.0, 0.37, 1.0):
        a, b = marginal_velocity_coeffs(PRE, t)
        got = model(x, torch.full((2,), t, dtype=torch.float64)).numpy()
        np.testing.assert_allclose(got, x.numpy() @ a.T + b, atol=1e-10)
    # Its flow carries N(0, I) to PRE: the pretrained law really is the source Gaussian.
    out = sample_ode(model, noise(N_SAMPLES, (2,), seed=3), SOLVER, SOLVER_STEPS).x.double().numpy()
    assert np.abs(out.mean(0) - PRE.mean).max() < 0.02
    assert np.abs(np.cov(out.T) - PRE.cov).max() < 0.02


def test_sde_with_the_score_identity_keeps_the_ode_marginals():
    # dX = [v + g^2/2 s] dt + g dW with s = (t v - x) / (1 - t): exact for this model, so the SDE
    # must land on the same Gaussian as the ODE although every particle takes a different path.
    model = AnalyticGaussianFlow(CONFIG, PRE)
    x0 = noise(N_SAMPLES, (2,), seed=4)
    training = {"sigma": 0.0, "coupling": "independent"}
    sde = sample_sde(model, x0, 200, 1.0, "identity", torch.Generator().manual_seed(5), training=training).x.double().numpy()
    ode = sample_ode(model, x0, SOLVER, SOLVER_STEPS).x.double().numpy()
    assert np.abs(sde.mean(0) - PRE.mean).max() < 0.03
    assert np.abs(np.cov(sde.T) - PRE.cov).max() < 0.03
    assert np.abs(sde - ode).sum(1).mean() > 0.3


def _wrong_answers(lam: float, tau: float) -> dict[str, Gaussian]:
    """Terminal laws a plausible but wrong implementation would reach."""
    return {
        "lambda = tau (clipped to 1)": terminal_law(PRE, TARGET, min(tau, 1.0)),
        "lambda = 1 / (1 + tau)": terminal_law(PRE, TARGET, 1.0 / (1.0 + tau)),
        "blend of the laws": Gaussian((1 - lam) * TARGET.mean + lam * PRE.mean, (1 - lam) * TARGET.cov + lam * PRE.cov),
        "pretrained law": PRE,
    }


def _gap(a: Gaussian, b: Gaussian) -> tuple[float, float]:
    return float(np.abs(a.mean - b.mean).max()), float(np.abs(a.cov - b.cov).max())


@pytest.mark.parametrize("tau", [0.0, 0.5, 3.0])
def test_constant_tau_gft_reaches_the_closed_form_terminal_law(tau):
    lam = tau / (1 + tau)
    expected = terminal_law(PRE, TARGET, lam)
    wrong = {k: w for k, w in _wrong_answers(lam, tau).items() if max(_gap(w, expected)) > 1e-6}
    # The test can only tell right from wrong if every wrong answer is far outside the tolerance.
    for name, w in wrong.items():
        dm, dc = _gap(w, expected)
        assert dm > 3 * MEAN_TOL or dc > 3 * COV_TOL, f"{name} is too close to the oracle to be caught"

    data_rng = np.random.default_rng(0)
    target_pool = torch.tensor(TARGET.sample(20_000, data_rng), dtype=torch.float32)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)  # the (unused) MLP weights GFT starts from
        pretrained = AnalyticGaussianFlow(CONFIG, PRE)
        model = MLPFlow(CONFIG)
    config = TrainConfig(
        method="gft",
        steps=STEPS,
        batch=BATCH,
        lr=LR,
        seed=0,
        schedule=f"constant:{tau}",
        coupling="independent",
        device="cpu",
        callback_every=STEPS,
    )
    trainer = Trainer(target_pool, config, init=model, pretrained=pretrained)
    assert trainer.schedule.lam(0) == pytest.approx(lam) and trainer.schedule.lam(STEPS - 1) == pytest.approx(lam)
    # Constant-lr Adam leaves minibatch noise in the fit; a tenfold lower lr at the end averages it out.
    trainer.run(max_steps=int(0.7 * STEPS))
    for group in trainer.optimizer.param_groups:
        group["lr"] = LR / 10
    trainer.run()
    assert trainer.done
    out = sample_ode(trainer.model, noise(N_SAMPLES, (2,), seed=1), SOLVER, SOLVER_STEPS).x
    out = out.double().numpy()
    got = Gaussian(out.mean(0), np.cov(out.T))

    dm, dc = _gap(got, expected)
    print(f"tau={tau}: mean err {dm:.3f}, cov err {dc:.3f}")
    assert dm < MEAN_TOL, f"mean {got.mean} vs closed form {expected.mean}"
    assert dc < COV_TOL, f"cov {got.cov.ravel()} vs closed form {expected.cov.ravel()}"
    for name, w in wrong.items():
        wm, wc = _gap(got, w)
        assert wm > 2 * MEAN_TOL or wc > 2 * COV_TOL, f"samples are as close to the wrong answer ({name})"
