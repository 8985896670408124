"""The report's statistics: paired comparisons over seeds, Holm's correction and summaries.

Every comparison pairs two methods seed by seed (same data, same pretrained model, same noise), so
the differences carry the method effect and little else. Intervals use Student's t quantiles with
n - 1 degrees of freedom, not "two standard errors" (which, with 5 seeds, is a 12% false-positive
rule, not 5%).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
from scipy import stats as _scipy_stats

ALPHA = 0.05
MIN_PAIRS = 3


@dataclass(frozen=True)
class Summary:
    """Mean, sample sd and t-based 95% interval of the finite values (``missing`` the rest)."""

    mean: float | None
    sd: float | None
    n: int
    missing: int = 0
    ci_low: float | None = None
    ci_high: float | None = None

    def to_dict(self) -> dict:
        return asdict(self)


def finite(values) -> list[float]:
    return [float(v) for v in values if v is not None and math.isfinite(float(v))]


def summarize(values) -> Summary:
    values = list(values)
    vals = finite(values)
    missing = len(values) - len(vals)
    if not vals:
        return Summary(None, None, 0, missing)
    mean = float(np.mean(vals))
    if len(vals) < 2:
        return Summary(mean, None, 1, missing)
    sd = float(np.std(vals, ddof=1))
    half = _scipy_stats.t.ppf(1 - ALPHA / 2, len(vals) - 1) * sd / math.sqrt(len(vals))
    return Summary(mean, sd, len(vals), missing, mean - half, mean + half)


@dataclass(frozen=True)
class Paired:
    """Method A against method B over paired seeds: ``diff = A - B`` (negative: A reads lower).

    ``p`` is the two-sided paired t-test; ``p_holm`` is filled in when the comparison is one of a
    declared family (:func:`holm`). ``dz`` is the standardised mean difference of the pairs and
    ``relative`` the mean difference over B's mean.
    """

    n: int
    mean_a: float | None
    mean_b: float | None
    diff: float | None
    ci_low: float | None
    ci_high: float | None
    t: float | None
    p: float | None
    dz: float | None
    relative: float | None
    p_holm: float | None = None

    def to_dict(self) -> dict:
        return asdict(self)


def aligned(a: dict, b: dict) -> tuple[list, list]:
    """Two seed -> value maps as lists over the seeds of either (a seed missing on one side reads None)."""
    seeds = sorted(set(a) | set(b))
    return [a.get(k) for k in seeds], [b.get(k) for k in seeds]


def paired(a, b) -> Paired:
    """Paired comparison of ``a[i]`` with ``b[i]``; pairs with a missing or non-finite side are dropped."""
    a, b = list(a), list(b)
    if len(a) != len(b):
        raise ValueError(f"paired samples need equal lengths, got {len(a)} and {len(b)}")
    pairs = [(float(x), float(y)) for x, y in zip(a, b)
             if x is not None and y is not None and math.isfinite(float(x)) and math.isfinite(float(y))]
    n = len(pairs)
    if n < MIN_PAIRS:
        mean_a = float(np.mean([x for x, _ in pairs])) if pairs else None
        mean_b = float(np.mean([y for _, y in pairs])) if pairs else None
        return Paired(n, mean_a, mean_b, None, None, None, None, None, None, None)
    x = np.array([p[0] for p in pairs])
    y = np.array([p[1] for p in pairs])
    d = x - y
    mean, sd = float(d.mean()), float(d.std(ddof=1))
    se = sd / math.sqrt(n)
    q = float(_scipy_stats.t.ppf(1 - ALPHA / 2, n - 1))
    if se > 0:
        t = mean / se
        p = float(2 * _scipy_stats.t.sf(abs(t), n - 1))
    else:  # identical differences: no spread to test against
        t = math.copysign(math.inf, mean) if mean else 0.0
        p = 0.0 if mean else 1.0
    dz = mean / sd if sd > 0 else None
    relative = mean / abs(float(y.mean())) if y.mean() != 0 else None
    return Paired(n, float(x.mean()), float(y.mean()), mean, mean - q * se, mean + q * se, t, p, dz, relative)


def holm(pvalues) -> list[float | None]:
    """Holm's step-down adjusted p-values (family-wise error at the nominal level); None stays None."""
    indexed = [(p, i) for i, p in enumerate(pvalues) if p is not None]
    m = len(indexed)
    adjusted: list[float | None] = [None] * len(pvalues)
    running = 0.0
    for rank, (p, i) in enumerate(sorted(indexed)):
        running = max(running, min(1.0, (m - rank) * p))  # monotone: a later p never reads below an earlier one
        adjusted[i] = running
    return adjusted


def proportion(successes: int, n: int) -> tuple[float | None, float | None, float | None]:
    """A rate and its 95% Wilson interval (sensible at 0 of 10, where the normal interval is empty)."""
    if n <= 0:
        return None, None, None
    z = float(_scipy_stats.norm.ppf(1 - ALPHA / 2))
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return p, max(0.0, centre - half), min(1.0, centre + half)


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
