"""Runs compared side by side, and the numbers that summarise them (the app's comparison pages).

* couplings: independent, exact OT and Sinkhorn GFT runs from one pretrained model, one seed and one
  schedule (the coupled minibatches themselves come from :func:`gft.evaluation.probes.coupled_batch`);
  a metrics table;
* methods: GFT against standard fine-tuning and training from scratch on the same budget over
  several seeds; W2 curves aligned by step, stability numbers and mode coverage with spread;

Pages stay thin: they build a :class:`gft.app.jobs.TrainingJob` from :func:`coupling_runs` or
:func:`method_runs`, read its views, and hand them to the tables here.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass
from typing import Callable

import numpy as np
import pandas as pd

from gft.core.couplings import COUPLINGS
from gft.core.models import FlowModel
from gft.core.training import TrainConfig, Trainer, TrainResult
from gft.data import DISTRIBUTIONS, MODES, DataSpec
from gft.evaluation.metrics import mode_coverage, stability, wasserstein2
from gft.evaluation.points import evaluate_2d, reference_sets
from gft.evaluation.result import Evaluation
from gft.tasks.points import PointsTask
from gft.tasks.runs import Monitor, make_trainer

COMPARED_METHODS = ("gft", "standard", "scratch")
METHOD_LABELS = {"gft": "GFT", "standard": "standard fine-tuning", "scratch": "from scratch"}
EVALUATION_POINTS = 1000  # evaluate_2d on finished runs: about 2-4 s per model on a CPU


# ---- the runs ------------------------------------------------------------------------------
@dataclass(frozen=True)
class CompareSettings:
    """The knobs shared by every run of a comparison (the pages bind them to the URL)."""

    pretrained: str = "shipped:moons"  # which model the runs start from (a label: the page holds the model)
    target: str = "8gaussians"
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

    def __post_init__(self) -> None:
        if self.target not in DISTRIBUTIONS:
            raise ValueError(f"target must be one of {sorted(DISTRIBUTIONS)}, got {self.target!r}")
        if not isinstance(self.steps, int) or not 10 <= self.steps <= 200_000:
            raise ValueError(f"steps must be an integer in [10, 200000], got {self.steps!r}")
        if not 2 <= self.snapshots <= 1000:
            raise ValueError(f"snapshots must be in [2, 1000], got {self.snapshots}")
        if not 3 <= self.evaluations <= 1000:
            raise ValueError(f"evaluations must be in [3, 1000], got {self.evaluations}")
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
                       trajectory_steps=20, trajectory_every=trajectory_every)

    def config(self, method: str, coupling: str, seed: int, callback_every: int | None = None) -> TrainConfig:
        return TrainConfig(
            method=method,
            steps=self.steps,
            batch=self.batch,
            lr=self.lr,
            seed=seed,
            schedule=self.schedule,
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
        return make_trainer(task, config, base=pretrained, monitor=monitor)

    return build


def coupling_runs(pretrained: FlowModel, settings: CompareSettings) -> dict[str, RunFactory]:
    """One GFT run per coupling, same seed, schedule and snapshot noise (so panels compare point by point)."""
    monitor = settings.monitor()
    return {kind: _factory(pretrained, settings, settings.config("gft", kind, settings.seed), monitor) for kind in COUPLINGS}


def run_name(method: str, seed: int) -> str:
    return f"{method} / seed {seed}"


def parse_run_name(name: str) -> tuple[str, int]:
    method, _, seed = name.partition(" / seed ")
    return method, int(seed)


def method_runs(pretrained: FlowModel, settings: CompareSettings, seeds: int) -> dict[str, RunFactory]:
    """GFT, standard fine-tuning and from-scratch runs for seeds ``seed .. seed + seeds - 1``."""
    if not isinstance(seeds, int) or not 1 <= seeds <= 10:
        raise ValueError(f"seeds must be an integer in [1, 10], got {seeds!r}")
    runs = {}
    for method in COMPARED_METHODS:
        for seed in range(settings.seed, settings.seed + seeds):
            # Snapshots only where W2 is measured: the final samples are all this page animates.
            config = settings.config(method, settings.coupling, seed, callback_every=settings.eval_every)
            runs[run_name(method, seed)] = _factory(pretrained, settings, config, settings.monitor())
    return runs


# ---- evaluating finished runs in the background ---------------------------------------------
@dataclass(frozen=True)
class EvaluationView:
    results: dict[str, Evaluation]
    total: int
    error: str | None

    @property
    def done(self) -> bool:
        return self.error is not None or len(self.results) == self.total

    @property
    def progress(self) -> float:
        return len(self.results) / self.total if self.total else 1.0


class EvaluationTask:
    """Runs :func:`gft.evaluation.points.evaluate_2d` on several models in a thread (seconds each)."""

    def __init__(self, models: dict[str, FlowModel], data: str, n: int = 1000, seed: int = 0, device: str = "cpu") -> None:
        self._models = dict(models)
        self._total = len(self._models)
        self._spec = DataSpec(data)
        self._n, self._seed, self._device = n, seed, device
        self._results: dict[str, Evaluation] = {}
        self._error: str | None = None
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._main, name="gft-evaluation", daemon=True)

    def start(self) -> "EvaluationTask":
        self._thread.start()
        return self

    def wait(self, timeout: float | None = None) -> bool:
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def view(self) -> EvaluationView:
        with self._lock:
            return EvaluationView(dict(self._results), self._total, self._error)

    def _main(self) -> None:
        try:
            for name, model in self._models.items():
                result = evaluate_2d(model, self._spec, n=self._n, seed=self._seed, device=self._device)
                with self._lock:
                    self._results[name] = result
        except Exception as exc:  # shown on the page; a failed evaluation must not take the app down
            with self._lock:
                self._error = f"{type(exc).__name__}: {exc}"
        finally:
            self._models = {}  # drop the references: the job owns the models


# ---- tables --------------------------------------------------------------------------------
COUPLING_COLUMNS = (
    "coupling", "steps", "W2", "W2 floor", "path length", "straightness",
    "W2 @1", "W2 @2", "W2 @4", "W2 @8", "train s", "steps/s", "OT ms/batch",
)  # fmt: skip


def coupling_table(results: dict[str, TrainResult], evaluations: dict[str, Evaluation]) -> pd.DataFrame:
    """One row per coupling: sample quality, path geometry, few-step W2 and training cost."""
    rows = []
    for name, result in results.items():
        ev = evaluations.get(name)
        few = ev.w2_by_steps if ev is not None else {}
        nan = float("nan")
        rows.append({
            "coupling": name,
            "steps": result.steps,
            "W2": ev.w2 if ev else nan,
            "W2 floor": ev.w2_floor if ev else nan,
            "path length": ev.path_length if ev else nan,
            "straightness": ev.straightness if ev else nan,
            "W2 @1": few.get("1", nan),  # Euler steps
            "W2 @2": few.get("2", nan),
            "W2 @4": few.get("4", nan),
            "W2 @8": few.get("8", nan),
            "train s": result.train_seconds,
            "steps/s": result.steps_per_second,
            "OT ms/batch": 1000.0 * result.ot_seconds_per_batch,
        })  # fmt: skip
    return pd.DataFrame(rows, columns=list(COUPLING_COLUMNS))


@dataclass(frozen=True)
class MethodCurves:
    """W2 against step for one method over seeds, on the steps every seed evaluated."""

    method: str
    seeds: tuple[int, ...]
    steps: np.ndarray  # (k,)
    w2: np.ndarray  # (seeds, k)

    @property
    def mean(self) -> np.ndarray:
        return self.w2.mean(0)

    @property
    def low(self) -> np.ndarray:
        return self.w2.min(0)

    @property
    def high(self) -> np.ndarray:
        return self.w2.max(0)


def w2_curve(history) -> tuple[np.ndarray, np.ndarray]:
    """``(steps, w2)`` of the history rows that carry a W2."""
    rows = [r for r in history if r.get("w2") is not None]
    return np.array([r["step"] for r in rows], dtype=np.int64), np.array([r["w2"] for r in rows], dtype=np.float64)


def method_curves(histories: dict[str, list[dict]]) -> dict[str, MethodCurves]:
    """Group run histories named by :func:`run_name` into per-method curves over the common steps."""
    grouped: dict[str, list[tuple[int, np.ndarray, np.ndarray]]] = {}
    for name, history in histories.items():
        method, seed = parse_run_name(name)
        steps, w2 = w2_curve(history)
        grouped.setdefault(method, []).append((seed, steps, w2))
    curves = {}
    for method, runs in grouped.items():
        runs.sort(key=lambda r: r[0])
        common = runs[0][1]
        for _, steps, _ in runs[1:]:
            common = np.intersect1d(common, steps)  # a stopped run ends early; compare where all exist
        w2 = np.stack([w[np.isin(s, common)] for _, s, w in runs]) if len(common) else np.zeros((len(runs), 0))
        curves[method] = MethodCurves(method, tuple(r[0] for r in runs), common, w2)
    return curves


def w2_floor(target: str, n: int, seed: int = 0) -> float:
    """W2 between two independent target draws of ``n`` points: the best a curve of that size can show."""
    a, b = reference_sets(DataSpec(target), n, seed)
    return wasserstein2(a, b, n, seed)


STABILITY_NUMBERS = ("final W2", "Spearman", "diff variance", "largest rise", "mode coverage")


def final_coverage(samples: np.ndarray | None, target: str) -> float | None:
    """Mode coverage of final samples for a mixture target (None otherwise)."""
    if samples is None or target not in MODES:
        return None
    centres, std = MODES[target]
    return mode_coverage(samples, centres, std)


def stability_table(curves: dict[str, MethodCurves], coverage: dict[str, list[float]] | None = None) -> pd.DataFrame:
    """Per method: mean and spread (std over seeds) of final W2, the stability numbers and coverage.

    Columns ``NAME`` and ``NAME std`` for each of :data:`STABILITY_NUMBERS`; a curve with fewer than three
    evaluations has no stability numbers (NaN).
    """
    rows = []
    for method, c in curves.items():
        per_seed: dict[str, list[float]] = {k: [] for k in STABILITY_NUMBERS}
        for w2 in c.w2:
            if len(w2):
                per_seed["final W2"].append(float(w2[-1]))
            if len(w2) >= 3 and np.isfinite(w2).all():
                s = stability(w2)
                per_seed["Spearman"].append(s.spearman)
                per_seed["diff variance"].append(s.diff_variance)
                per_seed["largest rise"].append(s.largest_rise)
        per_seed["mode coverage"] = [v for v in (coverage or {}).get(method, []) if v is not None]
        row: dict = {"method": METHOD_LABELS.get(method, method), "seeds": len(c.seeds)}
        for key, values in per_seed.items():
            row[key] = float(np.mean(values)) if values else float("nan")
            row[f"{key} std"] = float(np.std(values)) if values else float("nan")
        rows.append(row)
    columns = ["method", "seeds"] + [c for k in STABILITY_NUMBERS for c in (k, f"{k} std")]
    return pd.DataFrame(rows, columns=columns)


def mean_pm_std(table: pd.DataFrame, digits: int = 3) -> pd.DataFrame:
    """Display form of :func:`stability_table`: one ``mean ± std`` text column per number."""
    out = table[["method", "seeds"]].copy()
    for key in STABILITY_NUMBERS:
        out[key] = [
            "n/a" if math.isnan(m) else f"{m:.{digits}g} ± {s:.2g}" for m, s in zip(table[key], table[f"{key} std"])
        ]
    return out
