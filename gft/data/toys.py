"""2D toy distributions: a registry of seedable, vectorised samplers.

Every registered sampler returns float32 points roughly within [-4, 4] so that shifts between
them are comparable. Mixtures report their mode centres, used for mode-coverage metrics.
"""

from __future__ import annotations

import math
from typing import Callable

import torch


def _gaussian(n: int, g: torch.Generator) -> torch.Tensor:
    return torch.randn(n, 2, generator=g)


def _grid_centres(k: int, spacing: float) -> torch.Tensor:
    r = (torch.arange(k, dtype=torch.float32) - (k - 1) / 2) * spacing
    return torch.cartesian_prod(r, r)


def _ring_centres(k: int, radius: float) -> torch.Tensor:
    a = torch.arange(k, dtype=torch.float32) * (2 * math.pi / k)
    return radius * torch.stack([torch.cos(a), torch.sin(a)], dim=1)


def _mixture(centres: torch.Tensor, std: float) -> Callable[[int, torch.Generator], torch.Tensor]:
    def sample(n: int, g: torch.Generator) -> torch.Tensor:
        idx = torch.randint(len(centres), (n,), generator=g)
        return centres[idx] + std * torch.randn(n, 2, generator=g)

    return sample


def _moons(n: int, g: torch.Generator) -> torch.Tensor:
    upper = torch.rand(n, generator=g) < 0.5
    a = torch.rand(n, generator=g) * math.pi
    x = torch.where(upper, torch.cos(a), 1 - torch.cos(a))
    y = torch.where(upper, torch.sin(a), 0.5 - torch.sin(a))
    pts = torch.stack([x - 0.5, y - 0.25], dim=1) * 2.0
    return pts + 0.1 * torch.randn(n, 2, generator=g)


def _circles(n: int, g: torch.Generator) -> torch.Tensor:
    radius = torch.where(torch.rand(n, generator=g) < 0.5, 1.5, 3.0)
    a = torch.rand(n, generator=g) * 2 * math.pi
    pts = radius[:, None] * torch.stack([torch.cos(a), torch.sin(a)], dim=1)
    return pts + 0.08 * torch.randn(n, 2, generator=g)


def _rings(n: int, g: torch.Generator) -> torch.Tensor:
    radius = (torch.randint(4, (n,), generator=g).float() + 1) * 0.85
    a = torch.rand(n, generator=g) * 2 * math.pi
    pts = radius[:, None] * torch.stack([torch.cos(a), torch.sin(a)], dim=1)
    return pts + 0.06 * torch.randn(n, 2, generator=g)


def _checkerboard(n: int, g: torch.Generator) -> torch.Tensor:
    # 8 of the 16 unit-ish cells of a 4x4 board over [-4, 4], alternate colours.
    x1 = torch.rand(n, generator=g) * 8 - 4
    col = torch.floor((x1 + 4) / 2)
    row = torch.randint(2, (n,), generator=g) * 2 + (col.long() % 2)
    x2 = torch.rand(n, generator=g) * 2 + row.float() * 2 - 4
    return torch.stack([x1, x2], dim=1)


def _spirals(n: int, g: torch.Generator) -> torch.Tensor:
    r = torch.sqrt(torch.rand(n, generator=g)) * 3 * math.pi
    arm = torch.where(torch.rand(n, generator=g) < 0.5, 0.0, math.pi)
    pts = torch.stack([r * torch.cos(r + arm), r * torch.sin(r + arm)], dim=1) / (3 * math.pi) * 3.5
    return pts + 0.1 * torch.randn(n, 2, generator=g)


def _swissroll(n: int, g: torch.Generator) -> torch.Tensor:
    s = 1.5 * math.pi * (1 + 2 * torch.rand(n, generator=g))
    pts = torch.stack([s * torch.cos(s), s * torch.sin(s)], dim=1) / 14.0 * 3.8
    return pts + 0.08 * torch.randn(n, 2, generator=g)


def _pinwheel(n: int, g: torch.Generator) -> torch.Tensor:
    k, radial_std, tangential_std, rate = 5, 0.3, 0.08, 0.25
    label = torch.randint(k, (n,), generator=g)
    f = torch.randn(n, 2, generator=g) * torch.tensor([radial_std, tangential_std])
    f[:, 0] += 1.0
    angle = label.float() * (2 * math.pi / k) + rate * torch.exp(f[:, 0])
    c, s = torch.cos(angle), torch.sin(angle)
    pts = torch.stack([c * f[:, 0] - s * f[:, 1], s * f[:, 0] + c * f[:, 1]], dim=1)
    return pts * 2.0


_8G_CENTRES = _ring_centres(8, 3.0)
_25G_CENTRES = _grid_centres(5, 1.6)

DISTRIBUTIONS: dict[str, Callable[[int, torch.Generator], torch.Tensor]] = {
    "gaussian": _gaussian,
    "8gaussians": _mixture(_8G_CENTRES, 0.2),
    "25gaussians": _mixture(_25G_CENTRES, 0.12),
    "moons": _moons,
    "circles": _circles,
    "checkerboard": _checkerboard,
    "spirals": _spirals,
    "swissroll": _swissroll,
    "pinwheel": _pinwheel,
    "rings": _rings,
}

# Mode centres and per-mode std for the mixtures (used by the mode-coverage metric).
MODES: dict[str, tuple[torch.Tensor, float]] = {
    "8gaussians": (_8G_CENTRES, 0.2),
    "25gaussians": (_25G_CENTRES, 0.12),
}


def sample_distribution(name: str, n: int, seed: int) -> torch.Tensor:
    """``n`` float32 points of the registered distribution ``name``, reproducible from ``seed``."""
    if name not in DISTRIBUTIONS:
        raise ValueError(f"unknown distribution {name!r}; choose one of {sorted(DISTRIBUTIONS)} or file:PATH")
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    g = torch.Generator().manual_seed(seed)
    return DISTRIBUTIONS[name](n, g).float()
