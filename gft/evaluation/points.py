"""One evaluation of a 2D flow model against its target, shared by the CLI, the app and the benchmarks.

Distances come with their null bands (:mod:`gft.evaluation.null_band`): W2 and the unbiased energy
distance between independent target draws of the same size, so a reader sees where "as good as the
target itself" lies at that sample size.
"""

from __future__ import annotations

import functools
from pathlib import Path

import torch

from gft.constants import FEW_STEPS, FLOOR_SEED_OFFSET, HELDOUT_SEED_OFFSET, MAX_MEASURED_POINTS, NULL_PAIRS, NULL_SEED_OFFSET
from gft.core.device import on_device
from gft.core.models import FlowModel
from gft.core.sampling import noise, sample_ode
from gft.data import MODES, DataSpec
from gft.evaluation.metrics import energy_distance_unbiased, mmd_rbf, mode_coverage, path_geometry, wasserstein2
from gft.evaluation.null_band import NullBand, null_band
from gft.evaluation.result import Evaluation


def reference_sets(spec: DataSpec, n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Two independent target sets of ``n`` points: the reference and a second, independent draw.

    For a registered distribution both are fresh draws (seeds apart from training's); for a user file
    they are two disjoint halves, since nothing else is known of its law.
    """
    if spec.is_file:
        pts = spec.points(0, seed)
        g = torch.Generator().manual_seed(seed)
        perm = torch.randperm(len(pts), generator=g)
        half = len(pts) // 2
        return pts[perm[:half]][:n], pts[perm[half:]][:n]
    return spec.points(n, seed + HELDOUT_SEED_OFFSET), spec.points(n, seed + FLOOR_SEED_OFFSET)


def null_bands(spec: DataSpec, n: int, seed: int = 0, pairs: int = NULL_PAIRS) -> dict[str, NullBand]:
    """W2 and energy-distance null bands of ``spec`` at ``n`` points: ``pairs`` independent target-draw pairs.

    Cached: they depend on the target, ``n`` and ``seed`` only, so every model evaluated against one
    target (the comparison pages evaluate several) pays for them once.
    """
    stamp = Path(spec.text[len("file:") :]).stat().st_mtime_ns if spec.is_file else 0
    return _cached_bands(spec.text, n, seed, pairs, stamp)


@functools.lru_cache(maxsize=64)
def _cached_bands(text: str, n: int, seed: int, pairs: int, _stamp: int) -> dict[str, NullBand]:
    spec = DataSpec(text)
    draws = lambda k: reference_sets(spec, n, seed + NULL_SEED_OFFSET + 7919 * k)  # noqa: E731 (k-th independent pair)
    return {
        "w2": null_band(draws, lambda a, b: wasserstein2(a, b, n, seed), n, pairs),
        "energy": null_band(draws, energy_distance_unbiased, n, pairs),
    }


def evaluate_2d(model: FlowModel, spec: DataSpec, n: int = 2000, seed: int = 0, device: str | torch.device = "cpu") -> Evaluation:
    """Evaluate ``model`` on ``spec`` with ``n`` samples from fixed noise ``seed`` (the model is not moved)."""
    if not 10 <= n <= MAX_MEASURED_POINTS:
        raise ValueError(f"n must be in [10, {MAX_MEASURED_POINTS}] (exact W2 needs n^2 memory), got {n}")
    model = on_device(model, device)
    ref, _ = reference_sets(spec, n, seed)
    bands = null_bands(spec, n, seed)
    x0 = noise(n, model.config.data_shape, seed, device)
    adaptive = sample_ode(model, x0, "dopri5", 1)
    x = adaptive.x.cpu()
    geom = path_geometry(sample_ode(model, x0, "euler", 100, keep_trajectory=True).trajectory)
    few = {str(k): wasserstein2(sample_ode(model, x0, "euler", k).x, ref, n, seed) for k in FEW_STEPS}
    coverage = None
    if spec.text in MODES:
        centres, std = MODES[spec.text]
        coverage = mode_coverage(x, centres, std)
    return Evaluation(
        kind="points",
        solver="dopri5",
        nfe=adaptive.nfe,
        n_samples=n,
        w2=wasserstein2(x, ref, n, seed),
        w2_null=bands["w2"].to_dict(),
        w2_by_steps=few,
        mmd=mmd_rbf(x, ref, n=n, seed=seed),
        energy=energy_distance_unbiased(x, ref),
        energy_null=bands["energy"].to_dict(),
        path_length=geom.path_length,
        straightness=geom.straightness,
        kinetic_energy=geom.kinetic_energy,
        mode_coverage=coverage,
    )

