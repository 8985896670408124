"""Flow matching and the GFT blended objective.

GFT at temperature tau minimises ``|f - y|^2 + tau |f - f_pre|^2`` for every drift head ``f``. Up to
the factor ``(1 + tau)`` and a constant this is a regression onto the blended target
``(1 - lambda) y + lambda f_pre`` with ``lambda = tau / (1 + tau)``; we use the blended form because its
scale does not change with tau. ``f_pre`` is a frozen copy of the pretrained model evaluated at the
same ``x_t``; it does not depend on the pair given ``x_t``, so any coupling keeps the gradient of the
marginal objective.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from gft.core.couplings import Coupling
from gft.core.models import FlowModel, frozen_copy
from gft.core.paths import GaussianPath, PathSample


def blended_target(y: torch.Tensor, f_pre: torch.Tensor | None, lam: float) -> torch.Tensor:
    """``(1 - lam) y + lam f_pre``: the minimiser of the GFT objective at lambda = ``lam``."""
    if not 0.0 <= lam < 1.0:
        raise ValueError(f"lambda must be in [0, 1), got {lam}")
    if lam == 0.0 or f_pre is None:
        if lam > 0.0:
            raise ValueError("lambda > 0 needs the pretrained drift f_pre")
        return y
    return (1.0 - lam) * y + lam * f_pre


@dataclass(frozen=True)
class LossValue:
    """The loss to backpropagate and its parts as floats (for logging)."""

    total: torch.Tensor
    velocity: float
    score: float | None


class GFTObjective:
    """Blended-target regression for every head; ``lambda = 0`` is plain flow matching."""

    def __init__(
        self,
        path: GaussianPath,
        coupling: Coupling,
        pretrained: FlowModel | None = None,
        score_head: bool = False,
    ) -> None:
        if score_head and path.sigma == 0 and not coupling.independent:
            raise ValueError(
                "a score head needs a conditional score: use sigma > 0 or the independent coupling "
                f"(got sigma=0 with coupling={coupling.kind!r})"
            )
        self.path = path
        self.coupling = coupling
        self.score_head = score_head
        # Held as its own frozen copy: eval mode, no gradients, never touched by the optimiser.
        self.pretrained = frozen_copy(pretrained) if pretrained is not None else None
        if self.pretrained is not None and self.pretrained.has_score != score_head:
            raise ValueError("the pretrained model and the fine-tuned model must have the same heads")

    def path_sample(
        self, x0: torch.Tensor, x1: torch.Tensor, generator: torch.Generator | None, shard=None
    ) -> PathSample:
        """Draw t uniformly and the point on the path for already-coupled pairs.

        With a ``shard`` (:class:`gft.core.distributed.Shard`: ``x0``, ``x1`` are this rank's rows of a
        global batch) the draws are made for the whole global batch, in the single-process order (t,
        then the path noise), and this rank keeps its rows: K ranks draw what one process would.
        """
        if shard is None:
            t = torch.rand(x0.shape[0], generator=generator, device=x0.device, dtype=x0.dtype)
            return self.path.sample(x0, x1, t, generator, independent=self.coupling.independent)
        n = shard.global_size(x0.shape[0])
        t = torch.rand(n, generator=generator, device=x0.device, dtype=x0.dtype)
        eps = None
        if self.path.sigma > 0:
            eps = shard.local(torch.randn((n, *x0.shape[1:]), generator=generator, device=x0.device, dtype=x0.dtype))
        return self.path.sample(x0, x1, shard.local(t), generator, independent=self.coupling.independent, eps=eps)

    def loss(
        self,
        model: FlowModel,
        x0: torch.Tensor,
        x1: torch.Tensor,
        lam: float,
        generator: torch.Generator | None = None,
        shard=None,
    ) -> LossValue:
        """Loss on a coupled batch ``(x0, x1)`` at pretrained weight ``lam`` (``shard``: see :meth:`path_sample`).

        ``model`` only needs ``heads(x, t)``: a DDP wrapper (:class:`gft.core.distributed.DataParallelHeads`) will do.
        """
        ps = self.path_sample(x0, x1, generator, shard)
        pred = model.heads(ps.x_t, ps.t)
        pre = None
        if lam > 0.0:
            if self.pretrained is None:
                raise ValueError("lambda > 0 needs a pretrained model")
            with torch.no_grad():
                pre = self.pretrained.heads(ps.x_t, ps.t)
        target_v = blended_target(ps.velocity, pre["velocity"] if pre else None, lam)
        loss_v = ((pred["velocity"] - target_v) ** 2).flatten(1).sum(1).mean()
        if not self.score_head:
            return LossValue(loss_v, float(loss_v.detach()), None)
        # Weighted by the conditional std squared: the same minimiser, bounded targets near the ends.
        scale = ps.score_scale
        target_s = blended_target(ps.score * scale, pre["score"] * scale if pre else None, lam)
        loss_s = ((pred["score"] * scale - target_s) ** 2).flatten(1).sum(1).mean()
        return LossValue(loss_v + loss_s, float(loss_v.detach()), float(loss_s.detach()))
