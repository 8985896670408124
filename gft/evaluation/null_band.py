"""Null bands: where a metric reads when the "model" is the target itself.

A distance between two finite samples is not zero even when both come from one law, and it scatters
from draw to draw. The null band of a metric at sample size ``n`` is its mean and standard deviation
over ``pairs`` independent pairs of target draws of that size: a model whose distance falls inside
``mean +- 2 sd`` cannot be told from the target at that ``n``. It replaces the single-draw "floor",
which is itself one noisy draw.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Callable

import numpy as np
import torch

from gft.constants import NULL_PAIRS

Draws = Callable[[int], tuple[torch.Tensor, torch.Tensor]]  # pair index -> two independent target sets
Metric = Callable[[torch.Tensor, torch.Tensor], float]


@dataclass(frozen=True)
class NullBand:
    """A metric's mean and spread over independent pairs of target draws of ``n`` points each."""

    mean: float
    sd: float
    pairs: int
    n: int

    def __post_init__(self) -> None:
        if self.pairs < 2:
            raise ValueError(f"a null band needs at least 2 pairs, got {self.pairs}")
        if not (math.isfinite(self.mean) and math.isfinite(self.sd)):
            raise ValueError(f"null band mean and sd must be finite, got {self.mean}, {self.sd}")

    @property
    def high(self) -> float:
        """The top of the band, ``mean + 2 sd``: a value above it is distinguishable from the target."""
        return self.mean + 2 * self.sd

    def z(self, value: float) -> float:
        """How many null standard deviations ``value`` sits above the null mean."""
        return (value - self.mean) / self.sd if self.sd > 0 else math.copysign(math.inf, value - self.mean)

    def to_dict(self) -> dict:
        return asdict(self)


def null_band(draws: Draws, metric: Metric, n: int, pairs: int = NULL_PAIRS) -> NullBand:
    """The band of ``metric`` over ``pairs`` calls of ``draws(k)`` (two independent sets of ``n`` points)."""
    if not isinstance(pairs, int) or pairs < 2:
        raise ValueError(f"pairs must be an integer >= 2, got {pairs!r}")
    values = np.array([metric(*draws(k)) for k in range(pairs)], dtype=np.float64)
    return NullBand(float(values.mean()), float(values.std(ddof=1)), pairs, n)
