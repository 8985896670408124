"""Conditional GFT loss = marginal GFT loss in expected gradient (method.md, fact 2).

Target: a mixture of three Diracs, independent coupling, sigma = 0. Then ``x_t | x1 = a_j`` is
``N(t a_j, (1-t)^2 I)``, the posterior ``p(a_j | x_t)`` is a softmax and the marginal velocity
``E[x1 - x0 | x_t] = (E[x1 | x_t] - x_t) / (1 - t)`` is exact. The conditional blended loss (the
library's ``GFTObjective.loss``) and the marginal blended loss must have the same gradient on the same
``x_t`` draws, up to Monte Carlo noise; wrong blends must miss by far more.
"""

from __future__ import annotations

import torch

from gft.core.couplings import Coupling
from gft.core.models import MLPFlow, ModelConfig
from gft.core.objectives import GFTObjective
from gft.core.paths import GaussianPath

ATOMS = torch.tensor([[2.5, 0.0], [-1.5, 2.0], [-0.5, -2.5]], dtype=torch.float64)
WEIGHTS = torch.tensor([0.5, 0.3, 0.2], dtype=torch.float64)
LAM = 0.6
N = 100_000


def _mlp(seed: int) -> MLPFlow:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return MLPFlow(ModelConfig(width=32, depth=2))


def _draw_pairs(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    idx = torch.multinomial(WEIGHTS, n, replacement=True, generator=g)
    x1 = ATOMS[idx]
    x0 = torch.randn(n, 2, generator=g, dtype=torch.float64)
    return x0, x1


def marginal_velocity(x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Exact ``E[x1 - x0 | x_t]`` for the Dirac mixture, in float64."""
    x_t, t = x_t.double(), t.double()[:, None]
    diff = x_t[:, None, :] - t[:, :, None] * ATOMS[None]  # (n, atoms, 2)
    logits = torch.log(WEIGHTS)[None] - (diff**2).sum(2) / (2 * (1 - t) ** 2)
    post = torch.softmax(logits, dim=1)
    # (a_j - x_t) / (1 - t) written without the cancellation of a_j - x_t near t = 1.
    mean_x1 = post @ ATOMS
    return (mean_x1 - x_t) / (1 - t)


def _grad(model: MLPFlow, loss: torch.Tensor) -> torch.Tensor:
    grads = torch.autograd.grad(loss, list(model.parameters()), retain_graph=True)
    return torch.cat([g.flatten() for g in grads]).double()


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).norm() / b.norm())


def test_marginal_velocity_is_exact_in_limits():
    # At t = 0 the posterior is the prior: v = E[x1] - x_0.
    x = torch.tensor([[0.3, -0.7]], dtype=torch.float64)
    v0 = marginal_velocity(x, torch.zeros(1))
    torch.testing.assert_close(v0, (WEIGHTS @ ATOMS)[None] - x)
    # Near t = 1, a point next to atom j moves straight to it.
    t = torch.tensor([0.99], dtype=torch.float64)
    v = marginal_velocity(0.99 * ATOMS[1:2] + 0.01 * x, t)
    torch.testing.assert_close(v, ATOMS[1:2] - x, atol=1e-6, rtol=0)


def test_posterior_velocity_matches_binned_monte_carlo_average():
    x0, x1 = _draw_pairs(2_000_000, seed=1)
    t = 0.4
    x_t = (1 - t) * x0 + t * x1
    # A point between two atoms' images, where the posterior is genuinely mixed.
    z = t * (0.3 * ATOMS[0] + 0.7 * ATOMS[2])
    near = ((x_t - z) ** 2).sum(1) < 0.1**2
    count = int(near.sum())
    assert count > 3000
    u = (x1 - x0)[near]
    mc = u.mean(0)
    # E[x1 - x0 | x_t in bin] = E[v(x_t) | x_t in bin]: compare on the same points, no binning bias.
    exact = marginal_velocity(x_t[near], torch.full((count,), t, dtype=torch.float64)).mean(0)
    tol = 4 * float(u.std(0).max()) / count**0.5
    assert tol < 0.3
    assert float((mc - exact).abs().max()) < tol
    posterior = torch.softmax(torch.log(WEIGHTS) - ((z - t * ATOMS) ** 2).sum(1) / (2 * (1 - t) ** 2), dim=0)
    assert posterior.max() < 0.8, "the test point should sit where the posterior is mixed"
    # Wrong answers a careless derivation could give are far off: prior-weighted and unconditional.
    prior_avg = (WEIGHTS @ ATOMS - z) / (1 - t)
    assert float((prior_avg - exact).abs().max()) > 8 * tol
    assert float(((x1 - x0).mean(0) - exact).abs().max()) > 8 * tol


def test_conditional_and_marginal_gft_losses_have_the_same_gradient():
    pretrained = _mlp(seed=11)
    model = _mlp(seed=12)
    x0, x1 = _draw_pairs(N, seed=2)
    x0, x1 = x0.float(), x1.float()
    objective = GFTObjective(GaussianPath(0.0), Coupling("independent"), pretrained=pretrained)

    # The library's conditional loss; the same seed then replays its t and x_t draws.
    loss_cond = objective.loss(model, x0, x1, LAM, torch.Generator().manual_seed(3)).total
    ps = objective.path_sample(x0, x1, torch.Generator().manual_seed(3))
    assert torch.equal(ps.velocity, x1 - x0)
    g_cond = _grad(model, loss_cond)

    pred = model(ps.x_t, ps.t)
    with torch.no_grad():
        f_pre = pretrained(ps.x_t, ps.t)
    v_marg = marginal_velocity(ps.x_t, ps.t).float()
    y = ps.velocity

    def blended_loss(w_target: float, target: torch.Tensor, w_pre: float) -> torch.Tensor:
        return ((pred - (w_target * target + w_pre * f_pre)) ** 2).sum(1).mean()

    g_marg = _grad(model, blended_loss(1 - LAM, v_marg, LAM))
    # The same formula on the conditional target reproduces the library's gradient.
    torch.testing.assert_close(_grad(model, blended_loss(1 - LAM, y, LAM)), g_cond, rtol=1e-4, atol=1e-6)

    rel = _rel(g_cond, g_marg)
    wrong = {
        "no blending (plain flow matching)": _grad(model, blended_loss(1.0, y, 0.0)),
        "lambda^2 on the conditional side": _grad(model, blended_loss(1 - LAM**2, y, LAM**2)),
        "tau = lambda used as the weight": _grad(model, blended_loss(1 - LAM / (1 + LAM), y, LAM / (1 + LAM))),
        "unnormalised GFT weights": _grad(model, blended_loss(1.0, y, LAM)),
    }
    print(f"conditional vs marginal: {rel:.4f}; wrong: " + ", ".join(f"{k} {_rel(g, g_marg):.3f}" for k, g in wrong.items()))
    assert rel < 0.04
    for name, g in wrong.items():
        assert _rel(g, g_marg) > 4 * max(rel, 0.04), f"{name} is not distinguishable from the right blend"

