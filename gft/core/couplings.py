"""Couplings of a noise batch and a data batch, on the squared Euclidean cost of flattened samples.

* ``independent``: keep the pairs as drawn.
* ``ot``: exact minibatch OT with POT's network simplex (``ot.emd``). With uniform weights and equal
  batch sizes the optimal plan is a permutation; we read it off the plan and reorder x1, so no point
  is duplicated or dropped (sampling the plan with replacement would do both).
* ``sinkhorn``: entropic OT (``ot.sinkhorn``, log-domain option); each x0 keeps its row and draws its
  partner from the row's conditional, so the x0 marginal is exact.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import ot
import torch

COUPLINGS = ("independent", "ot", "sinkhorn")
# exp(-x) is 0 in float64 beyond x ~ 745; past 700 the Sinkhorn scalings overflow within a few iterations.
KERNEL_UNDERFLOW = 700.0


def squared_cost(x0: torch.Tensor, x1: torch.Tensor) -> np.ndarray:
    """Pairwise squared distances of flattened batches, as float64 numpy for POT."""
    a = x0.detach().reshape(x0.shape[0], -1).double().cpu()
    b = x1.detach().reshape(x1.shape[0], -1).double().cpu()
    # ||a||^2 + ||b||^2 - 2ab is fast but can dip below 0 by rounding; clamp keeps POT happy.
    cost = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2.0 * a @ b.T
    return cost.clamp_min_(0.0).numpy()


def ot_permutation(cost: np.ndarray) -> np.ndarray:
    """Exact OT assignment for equal-size uniform batches: ``perm[i]`` is the partner of row i."""
    n, m = cost.shape
    if n != m:
        raise ValueError(f"exact OT pairing needs equal batch sizes, got {n} and {m}")
    plan, log = ot.emd(np.empty(0), np.empty(0), cost, numItermax=max(100_000, 50 * n * n), log=True)
    if log.get("result_code", 1) != 1:
        raise RuntimeError(f"ot.emd did not reach an optimal plan: {log.get('warning')}")
    perm = plan.argmax(axis=1)
    # A vertex of the Birkhoff polytope is a permutation; anything else means the solver misbehaved.
    if len(np.unique(perm)) != n:
        raise RuntimeError("ot.emd returned a plan that is not a permutation; refusing to pair")
    return perm


@dataclass
class Coupling:
    """Pairs ``(x0, x1)`` batches; ``last_seconds`` is the time the last OT solve took."""

    kind: str = "independent"
    reg: float = 0.5  # in units of the squared cost (2D toys: mean cost ~10); 2 sigma^2 gives SB-CFM
    log_domain: bool = False

    def __post_init__(self) -> None:
        if self.kind not in COUPLINGS:
            raise ValueError(f"coupling must be one of {COUPLINGS}, got {self.kind!r}")
        if not self.reg > 0:
            raise ValueError(f"sinkhorn reg must be > 0, got {self.reg}")
        self.last_seconds = 0.0

    @property
    def independent(self) -> bool:
        return self.kind == "independent"

    def pair(
        self, x0: torch.Tensor, x1: torch.Tensor, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Return ``(x0, x1')`` where ``x1'`` is x1 reordered (or resampled, for Sinkhorn) to pair with x0."""
        x0, x1, self.last_seconds = self.solve(x0, x1, generator)
        return x0, x1

    def solve(
        self, x0: torch.Tensor, x1: torch.Tensor, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, float]:
        """:meth:`pair` plus the seconds the solve took; it writes no state, so several threads may
        solve different batches at once (POT releases the GIL inside its solvers)."""
        if self.kind == "independent":
            return x0, x1, 0.0
        start = time.perf_counter()
        cost = squared_cost(x0, x1)
        if self.kind == "ot":
            idx = torch.from_numpy(ot_permutation(cost))
        else:
            idx = self._sinkhorn_partners(cost, generator, x0.device)
        return x0, x1[idx.to(x1.device)], time.perf_counter() - start

    def _check_kernel(self, cost: np.ndarray) -> None:
        """Refuse a reg whose kernel exp(-cost / reg) has a row or column of zeros: the standard-domain
        solver cannot recover from that, and would first print numpy and POT warnings."""
        nearest = max(cost.min(axis=1).max(), cost.min(axis=0).max())
        if nearest / self.reg > KERNEL_UNDERFLOW:
            raise RuntimeError(
                f"--sinkhorn-reg {self.reg:g} is too small for these batches: exp(-cost/reg) underflows to 0 "
                f"(nearest-partner cost up to {nearest:.3g}); use --sinkhorn-reg >= {nearest / KERNEL_UNDERFLOW:.2g}"
            )

    def _sinkhorn_partners(
        self, cost: np.ndarray, generator: torch.Generator | None, device: torch.device
    ) -> torch.Tensor:
        if not self.log_domain:
            self._check_kernel(cost)
        if self.log_domain:
            # POT's log-domain solver is far quicker on its torch backend than on numpy arrays.
            m = torch.from_numpy(cost)
            w = torch.full((cost.shape[0],), 1.0 / cost.shape[0], dtype=torch.float64)
            plan = ot.sinkhorn(w, w, m, self.reg, method="sinkhorn_log", numItermax=1000, stopThr=1e-6).numpy()
        else:
            with np.errstate(all="ignore"):  # a failed plan is detected below, in one line
                plan = ot.sinkhorn(np.empty(0), np.empty(0), cost, self.reg, method="sinkhorn", numItermax=1000, stopThr=1e-6)
        rows = plan.sum(axis=1)
        if not np.isfinite(plan).all() or (rows <= 0).any():
            raise RuntimeError(f"Sinkhorn failed at --sinkhorn-reg {self.reg:g} (the plan underflowed); raise --sinkhorn-reg")
        rows = torch.from_numpy(plan / rows[:, None]).float()
        gen_device = generator.device if generator is not None else torch.device("cpu")
        # Draw on the generator's device so a CUDA generator keeps the run reproducible.
        return torch.multinomial(rows.to(gen_device), 1, generator=generator).squeeze(1).cpu()


def pairing_cost(x0: torch.Tensor, x1: torch.Tensor) -> float:
    """Mean squared distance between paired rows."""
    return float(((x0 - x1).reshape(x0.shape[0], -1) ** 2).sum(1).mean())
