"""A fixed reference sample of a target law, for many energy-distance evaluations against it.

The unbiased energy distance costs ``len(x) * len(y)`` distances per term; against a reference of
20,000 points its within-reference term alone is 2 * 10^8 distances. That term does not depend on the
model, so it is computed once here and every evaluation pays only for its own samples.
"""

from __future__ import annotations

import numpy as np

from gft.constants import NULL_PAIRS
from gft.evaluation.metrics import _as_numpy, _mean_distance
from gft.evaluation.null_band import NullBand, null_band


class EnergyReference:
    """``energy(x)`` is the unbiased energy distance of ``x`` to ``points`` (equal to
    :func:`gft.evaluation.metrics.energy_distance_unbiased`), with the reference's own term cached."""

    def __init__(self, points) -> None:
        self.points = _as_numpy(points)
        if len(self.points) < 2:
            raise ValueError(f"a reference needs at least 2 points, got {len(self.points)}")
        if not np.isfinite(self.points).all():
            raise ValueError("reference points must be finite")
        self._within = _mean_distance(self.points, self.points, same=True)

    def __len__(self) -> int:
        return len(self.points)

    def energy(self, x) -> float:
        a = _as_numpy(x)
        if len(a) < 2:
            raise ValueError(f"energy distance needs at least 2 samples, got {len(a)}")
        if a.shape[1:] != self.points.shape[1:]:
            raise ValueError(f"samples have shape {a.shape[1:]}, the reference {self.points.shape[1:]}")
        if not np.isfinite(a).all():
            return float("inf")
        return float(2 * _mean_distance(a, self.points, same=False) - _mean_distance(a, a, same=True) - self._within)

    def null_band(self, draw, n: int, pairs: int = NULL_PAIRS) -> NullBand:
        """Where ``energy`` reads for ``n`` fresh target draws: ``draw(k)`` is the k-th independent set of ``n``."""
        return null_band(lambda k: (draw(k), None), lambda x, _: self.energy(x), n, pairs)
