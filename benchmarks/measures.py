"""Benchmark-only measures: memorisation in 2D, summaries over seeds and a plain verdict between two methods."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
import torch


def mean_nn_distance(points: torch.Tensor, reference: torch.Tensor, chunk: int = 2048) -> float:
    """Mean over ``points`` of the Euclidean distance to the nearest row of ``reference``."""
    ref = reference.reshape(len(reference), -1).double()
    total = 0.0
    for block in points.reshape(len(points), -1).double().split(chunk):
        total += float(torch.cdist(block, ref).min(dim=1).values.sum())
    return total / len(points)


def nn_distance_ratio(samples: torch.Tensor, train: torch.Tensor, held_out: torch.Tensor) -> float:
    """Memorisation: NN distance of samples to the training set over that of fresh target draws.

    About 1 when the model generalises; well below 1 when samples sit on the training points.
    """
    return mean_nn_distance(samples, train) / max(mean_nn_distance(held_out, train), 1e-12)


@dataclass(frozen=True)
class Summary:
    """Mean and sample standard deviation over seeds (``n`` finite values, ``missing`` the rest)."""

    mean: float | None
    sd: float | None
    n: int
    missing: int = 0

    def to_dict(self) -> dict:
        return asdict(self)

    def text(self, digits: int = 3) -> str:
        if self.mean is None:
            return "n/a"
        sd = f" ± {self.sd:.{digits}g}" if self.sd is not None else ""
        miss = f" ({self.missing} of {self.n + self.missing} n/a)" if self.missing else ""
        return f"{self.mean:.{digits}g}{sd}{miss}"


def summarize(values) -> Summary:
    """Summary of the finite values among ``values`` (None, NaN and inf count as missing)."""
    vals = [float(v) for v in values if v is not None and math.isfinite(float(v))]
    missing = len(list(values)) - len(vals)
    if not vals:
        return Summary(None, None, 0, missing)
    sd = float(np.std(vals, ddof=1)) if len(vals) > 1 else None
    return Summary(float(np.mean(vals)), sd, len(vals), missing)


MIN_SEEDS = 3


def verdict(a, b, lower_is_better: bool = True) -> str:
    """'better', 'worse' or 'no clear difference' for method A against B over paired seeds.

    A difference counts when the mean paired difference exceeds twice its standard error, which
    keeps seed noise from being reported as a win; fewer than 3 paired seeds give no verdict.
    """
    pairs = [(x, y) for x, y in zip(a, b) if x is not None and y is not None and math.isfinite(x) and math.isfinite(y)]
    if len(pairs) < MIN_SEEDS:
        return f"too few seeds ({len(pairs)})"
    d = np.array([x - y for x, y in pairs], dtype=np.float64)
    if not lower_is_better:
        d = -d
    se = float(d.std(ddof=1) / math.sqrt(len(d)))
    if d.mean() < -2 * se and d.mean() < 0:
        return "better"
    if d.mean() > 2 * se and d.mean() > 0:
        return "worse"
    return "no clear difference"


def finite_or_none(value):
    """JSON-safe numbers: NaN and inf become None (the report says n/a)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: finite_or_none(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite_or_none(v) for v in value]
    if isinstance(value, (np.floating, np.integer)):
        return finite_or_none(value.item())
    return value
