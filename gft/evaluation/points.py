"""One evaluation of a 2D flow model against its target, shared by the CLI, the app and the benchmarks."""

from __future__ import annotations

import torch

from gft.constants import FEW_STEPS, FLOOR_SEED_OFFSET, HELDOUT_SEED_OFFSET, MAX_MEASURED_POINTS
from gft.core.device import on_device
from gft.core.models import FlowModel
from gft.core.sampling import noise, sample_ode
from gft.data import MODES, DataSpec
from gft.evaluation.metrics import energy_distance, mmd_rbf, mode_coverage, path_geometry, wasserstein2
from gft.evaluation.result import Evaluation


def reference_sets(spec: DataSpec, n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Two independent target sets of ``n`` points: the reference and a second draw for the floor.

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


def evaluate_2d(model: FlowModel, spec: DataSpec, n: int = 2000, seed: int = 0, device: str | torch.device = "cpu") -> Evaluation:
    """Evaluate ``model`` on ``spec`` with ``n`` samples from fixed noise ``seed`` (the model is not moved)."""
    if not 10 <= n <= MAX_MEASURED_POINTS:
        raise ValueError(f"n must be in [10, {MAX_MEASURED_POINTS}] (exact W2 needs n^2 memory), got {n}")
    model = on_device(model, device)
    ref, ref2 = reference_sets(spec, n, seed)
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
        w2_floor=wasserstein2(ref2, ref, n, seed),
        w2_by_steps=few,
        mmd=mmd_rbf(x, ref, n=n, seed=seed),
        energy=energy_distance(x, ref, n=n, seed=seed),
        path_length=geom.path_length,
        straightness=geom.straightness,
        kinetic_energy=geom.kinetic_energy,
        mode_coverage=coverage,
    )

