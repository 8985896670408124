"""Null bands: a metric's mean and spread between independent target draws, replacing the single-draw floor."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from gft.data import DataSpec, sample_distribution
from gft.evaluation.metrics import energy_distance_unbiased
from gft.evaluation.null_band import NullBand, null_band
from gft.evaluation.points import null_bands


def test_the_band_of_a_known_statistic_has_its_closed_form_spread():
    # Difference of the means of two N(0, 1) samples of n: mean 0, sd sqrt(2 / n) exactly.
    n, pairs = 100, 400
    gen = torch.Generator().manual_seed(0)
    draws = lambda k: (torch.randn(n, generator=gen), torch.randn(n, generator=gen))  # noqa: E731
    band = null_band(draws, lambda a, b: float(a.mean() - b.mean()), n, pairs)
    assert band.pairs == pairs and band.n == n
    assert abs(band.mean) < 4 * math.sqrt(2 / n) / math.sqrt(pairs)
    assert band.sd == pytest.approx(math.sqrt(2 / n), rel=0.1)  # the sd of a 400-draw sd estimate is ~3.5%
    assert band.high == pytest.approx(band.mean + 2 * band.sd)
    assert band.z(band.mean + 3 * band.sd) == pytest.approx(3.0)


def test_a_band_needs_pairs_and_finite_numbers():
    with pytest.raises(ValueError, match="pairs"):
        null_band(lambda k: (torch.zeros(3), torch.zeros(3)), lambda a, b: 0.0, 3, pairs=1)
    with pytest.raises(ValueError, match="finite"):
        NullBand(float("nan"), 0.1, 20, 10)


def test_the_energy_band_tells_a_small_known_shift_from_noise():
    # 25gaussians translated by 0.4 (a known W2 of 0.4): at n = 2000 the unbiased energy distance of every
    # shifted draw sits above the top of its null band (the band: about 0.000 +- 0.0025; a shift of 0.2 reads
    # about 0.005-0.009, at the edge of what n = 2000 can tell), while unshifted pairs centre at 0.
    n = 2000
    pair = lambda k: (sample_distribution("25gaussians", n, 10 + 2 * k), sample_distribution("25gaussians", n, 11 + 2 * k))  # noqa: E731
    band = null_band(pair, energy_distance_unbiased, n, pairs=20)
    assert abs(band.mean) < 3 * band.sd / np.sqrt(band.pairs)
    shift = torch.tensor([0.4, 0.0])
    shifted = [energy_distance_unbiased(sample_distribution("25gaussians", n, 100 + k) + shift, sample_distribution("25gaussians", n, 200 + k))
               for k in range(3)]
    assert min(shifted) > band.high


def test_bands_are_cached_per_target_size_and_seed():
    a = null_bands(DataSpec("moons"), 200, seed=3)
    assert null_bands(DataSpec("moons"), 200, seed=3) is a
    assert null_bands(DataSpec("moons"), 200, seed=4) is not a
