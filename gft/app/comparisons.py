"""Runs compared side by side on the comparison pages, as factories a :class:`gft.app.jobs.TrainingJob` calls.

* couplings: independent, exact OT and Sinkhorn GFT runs from one pretrained model, one seed and one
  schedule (:func:`coupling_runs`);
* methods: GFT (and its variants) against standard fine-tuning, the baselines of
  :mod:`gft.tasks.variants` and training from scratch, on the same budget over several seeds
  (:func:`method_runs`), optionally on a few target points with validation-chosen checkpoints.

Every run is built by :func:`gft.tasks.runs.make_trainer`; the tables that summarise finished runs are in
:mod:`gft.evaluation.summaries`, and their evaluation in :mod:`gft.app.evaluation_task`.

The target is a data spec, as the CLI's ``--data``: a registered 2D name or ``file:PATH``. Points held in
a session (an upload, a drawing) become such a file with :func:`points_spec`, so the runs, the coupling
figure, the null band and the evaluation all read the same set through one string.
"""

from __future__ import annotations

import hashlib
import math
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from gft.app.resources import PREVIEW_POINTS, PREVIEW_SEED
from gft.core.couplings import COUPLINGS
from gft.core.models import FlowModel
from gft.core.training import TrainConfig, Trainer
from gft.data import DISTRIBUTIONS, DataSpec, load_points_file, sample_distribution, validate_points
from gft.evaluation.summaries import run_name
from gft.tasks.points import PointsTask
from gft.tasks.runs import Monitor, make_trainer
from gft.tasks.variants import VARIANTS, variant

COMPARED_METHODS = ("gft", "standard", "scratch")  # the default comparison
LIMITS = (8, 16, 64, 256)  # the few-data choices a page offers (None: the whole pool)
TARGETS_DIR = Path(tempfile.gettempdir()) / "gft_targets"  # session-held targets, as files every run can read


# ---- the target ----------------------------------------------------------------------------
def check_target(target: str) -> DataSpec:
    """``target`` as a 2D data spec the runs can load; otherwise a ValueError naming the field and why."""
    if not isinstance(target, str) or not target:
        raise ValueError(f"target must be a registered 2D name or file:PATH, got {target!r}")
    try:
        spec = DataSpec(target)
    except ValueError:
        raise ValueError(f"target must be one of {sorted(DISTRIBUTIONS)} or file:PATH (N x 2 points, .npy or .csv), got {target!r}") from None
    if spec.is_image:
        raise ValueError(f"target must be 2D points (the runs are drawn side by side in the plane), got {target!r}")
    if spec.is_file:
        try:
            load_points_file(target[len("file:"):])
        except ValueError as exc:
            raise ValueError(f"target {target!r} cannot be used: {exc}") from None
    return spec


def points_spec(points: np.ndarray, folder: Path | None = None) -> str:
    """Points held in memory (an upload, a drawing) as a ``file:PATH`` spec of a ``.npy`` file.

    The file is named by its content: the same points are written once, and changed points are a new
    spec, so a page that compares its settings with its last run's sees the change.
    """
    pts = validate_points(np.asarray(points), "target points")
    folder = TARGETS_DIR if folder is None else Path(folder)
    path = folder / f"target-{hashlib.sha1(pts.tobytes()).hexdigest()[:16]}.npy"
    if not path.is_file():
        folder.mkdir(parents=True, exist_ok=True)
        # Written aside and renamed: a run or another session reading this path never sees half a file.
        with tempfile.NamedTemporaryFile(dir=folder, suffix=".tmp", delete=False) as f:
            np.save(f, pts)
        os.replace(f.name, path)
    return f"file:{path}"


def target_cloud(target: str, n: int = PREVIEW_POINTS) -> np.ndarray:
    """Up to ``n`` points of ``target`` to draw under samples: draws of a preset, or the file's set (a seeded subset)."""
    spec = DataSpec(target)
    if not spec.is_file:
        return sample_distribution(target, n, PREVIEW_SEED).numpy()
    pts = spec.points(0, 0).numpy()
    if len(pts) <= n:
        return pts
    return pts[np.sort(np.random.default_rng(PREVIEW_SEED).choice(len(pts), n, replace=False))]


# ---- the runs ------------------------------------------------------------------------------
@dataclass(frozen=True)
class CompareSettings:
    """The knobs shared by every run of a comparison (the pages bind them to the URL)."""

    pretrained: str = "shipped:moons"  # which model the runs start from (a label: the page holds the model)
    target: str = "8gaussians"  # a data spec: a registered 2D name or file:PATH (see points_spec)
    schedule: str = "stages:10,0.5,5"
    final_fraction: float = 0.2
    steps: int = 600
    batch: int = 256
    lr: float = 1e-3
    seed: int = 0
    coupling: str = "independent"  # the method comparison trains every method with this coupling
    sinkhorn_reg: float = 1.0
    device: str = "cpu"
    particles: int = 500  # fixed-noise particles carried by every snapshot
    snapshots: int = 50  # training snapshots per run (the animation's frames)
    evaluations: int = 15  # W2 points per curve
    eval_points: int = 500
    methods: tuple[str, ...] = COMPARED_METHODS  # labels of gft.tasks.variants.VARIANTS
    limit: int | None = None  # train on this many target points (None: the whole pool)
    val_fraction: float = 0.0  # share of those held out to pick each run's best checkpoint (0: none)

    def __post_init__(self) -> None:
        check_target(self.target)
        if not isinstance(self.steps, int) or not 10 <= self.steps <= 200_000:
            raise ValueError(f"steps must be an integer in [10, 200000], got {self.steps!r}")
        if not 2 <= self.snapshots <= 1000:
            raise ValueError(f"snapshots must be in [2, 1000], got {self.snapshots}")
        if not 3 <= self.evaluations <= 1000:
            raise ValueError(f"evaluations must be in [3, 1000], got {self.evaluations}")
        if not self.methods or len(set(self.methods)) != len(self.methods):
            raise ValueError(f"methods must be distinct labels of {sorted(VARIANTS)}, got {self.methods!r}")
        for label in self.methods:
            variant(label)
        if self.limit is not None and (not isinstance(self.limit, int) or not 4 <= self.limit <= 1_000_000):
            raise ValueError(f"limit must be None or an integer in [4, 1000000], got {self.limit!r}")
        if not 0 <= self.val_fraction <= 0.5:
            raise ValueError(f"val_fraction must be in [0, 0.5], got {self.val_fraction}")
        if self.val_fraction and self.limit is None:
            raise ValueError("a validation share needs limit (a few target points): with the whole pool, use the held-out W2")
        self.config("gft", self.coupling, self.seed)  # validates the rest (schedule, lr, batch, ...)

    @property
    def callback_every(self) -> int:
        return max(1, self.steps // self.snapshots)

    @property
    def eval_every(self) -> int:
        """A multiple of ``callback_every`` (the trainer only evaluates at callback steps), at most ``evaluations`` W2s."""
        per = max(1, math.ceil(self.steps / self.callback_every / self.evaluations))
        return self.callback_every * per

    def monitor(self, trajectory_every: int = 0) -> Monitor:
        """W2 on the shared held-out draws at ``eval_every``; trajectories at every callback (or ``trajectory_every``)."""
        return Monitor(eval_every=self.eval_every, eval_points=self.eval_points, particles=self.particles,
                       trajectory_steps=20, trajectory_every=trajectory_every, val_fraction=self.val_fraction)

    def config(self, method: str, coupling: str, seed: int, callback_every: int | None = None) -> TrainConfig:
        """The config of ``method`` (a variant label: "gft" uses this comparison's schedule) for one seed."""
        return variant(method).config(
            self.steps,
            schedule=self.schedule,
            batch=self.batch,
            lr=self.lr,
            seed=seed,
            final_fraction=self.final_fraction,
            coupling=coupling,
            sinkhorn_reg=self.sinkhorn_reg,
            device=self.device,
            callback_every=callback_every or self.callback_every,
        )


RunFactory = Callable[[], Trainer]


def _factory(pretrained: FlowModel, settings: CompareSettings, config: TrainConfig, monitor: Monitor) -> RunFactory:
    # One yardstick for every run: the held-out draws of the comparison's seed, whatever the run's seed
    # (runs of one seed share their training data). The trainer copies the shared pretrained model.
    task = PointsTask(settings.target, reference_seed=settings.seed)

    def build() -> Trainer:
        return make_trainer(task, config, base=pretrained, monitor=monitor, limit=settings.limit)

    return build


def coupling_runs(pretrained: FlowModel, settings: CompareSettings) -> dict[str, RunFactory]:
    """One GFT run per coupling, same seed, schedule and snapshot noise (so panels compare point by point)."""
    monitor = settings.monitor()
    return {kind: _factory(pretrained, settings, settings.config("gft", kind, settings.seed), monitor) for kind in COUPLINGS}


def method_runs(pretrained: FlowModel, settings: CompareSettings, seeds: int) -> dict[str, RunFactory]:
    """One run per method of ``settings.methods`` and seed ``seed .. seed + seeds - 1``."""
    if not isinstance(seeds, int) or not 1 <= seeds <= 10:
        raise ValueError(f"seeds must be an integer in [1, 10], got {seeds!r}")
    runs = {}
    for method in settings.methods:
        for seed in range(settings.seed, settings.seed + seeds):
            # Snapshots only where W2 is measured: the final samples are all this page animates.
            config = settings.config(method, settings.coupling, seed, callback_every=settings.eval_every)
            runs[run_name(method, seed)] = _factory(pretrained, settings, config, settings.monitor())
    return runs
