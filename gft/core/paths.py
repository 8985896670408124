"""The interpolant ``x_t = (1 - t) x0 + t x1 + sigma_t eps`` with ``sigma_t = sigma sqrt(t (1 - t))``."""

from __future__ import annotations

from dataclasses import dataclass

import torch

# Keeps sigma_t' finite: the Brownian-bridge velocity term diverges like 1/sqrt(t(1-t)) at the ends.
T_EPS = 1e-4


@dataclass(frozen=True)
class PathSample:
    """One draw of the path for a batch of pairs: the point, its time and the regression targets."""

    x_t: torch.Tensor
    t: torch.Tensor
    velocity: torch.Tensor  # conditional velocity u_t
    score: torch.Tensor | None  # conditional score, None where no conditional score exists
    score_scale: torch.Tensor | None  # conditional std: the score loss is weighted by its square


@dataclass(frozen=True)
class GaussianPath:
    """Straight path between a pair, optionally widened into a Brownian bridge of level ``sigma``."""

    sigma: float = 0.0

    def __post_init__(self) -> None:
        if not (self.sigma >= 0.0 and self.sigma <= 10.0):
            raise ValueError(f"sigma must be in [0, 10], got {self.sigma}")

    def sigma_t(self, t: torch.Tensor) -> torch.Tensor:
        return self.sigma * torch.sqrt(t * (1 - t))

    def sample(
        self,
        x0: torch.Tensor,
        x1: torch.Tensor,
        t: torch.Tensor,
        generator: torch.Generator | None = None,
        independent: bool = True,
        eps: torch.Tensor | None = None,
    ) -> PathSample:
        """Draw ``x_t`` and the targets; ``independent`` says whether the pair came from p0 x q.

        ``eps`` (sigma > 0): the path noise, already drawn (data-parallel ranks draw it for the global batch).
        """
        shape = (-1,) + (1,) * (x0.dim() - 1)
        tb = t.view(shape)
        x_t = (1 - tb) * x0 + tb * x1
        velocity = x1 - x0
        if self.sigma > 0:
            tc = t.clamp(T_EPS, 1 - T_EPS).view(shape)
            if eps is None:
                eps = torch.randn(x0.shape, generator=generator, device=x0.device, dtype=x0.dtype)
            s_t = self.sigma * torch.sqrt(tc * (1 - tc))
            x_t = x_t + s_t * eps
            velocity = velocity + self.sigma * (1 - 2 * tc) / (2 * torch.sqrt(tc * (1 - tc))) * eps
            return PathSample(x_t, t, velocity, -eps / s_t, s_t.expand_as(x0))
        if independent:
            # Given x1 alone, x_t ~ N(t x1, (1-t)^2 I): its score is -x0 / (1 - t).
            one_minus = (1 - tb).clamp_min(T_EPS)
            return PathSample(x_t, t, velocity, -x0 / one_minus, one_minus.expand_as(x0))
        return PathSample(x_t, t, velocity, None, None)
