"""Stability under stress: learning rate x batch x gradient clipping, GFT against standard fine-tuning.

Each run is read every ``stress_every`` steps (energy of ``curve_n`` samples to a 5,000-point subset of
the target's reference). Measures:
- divergence: the library's rule stopped the run (or its loss went non-finite), or the run blew up without
  tripping that rule: a reading above BLOW_UP times the first (samples flung far off the data);
- largest rise: the largest amount by which the curve climbs above its running best (a spike or drift);
- late fluctuation: the total upward movement of the curve over the last 20% of the run (the sum of its
  rises between readings), the phase where both methods train on the target alone (standard after its
  plateau, GFT after tau reaches 0). A steady descent reads 0, so GFT's late catching-up is not counted
  as noise; comparing whole curves (or their sd) would mostly measure that GFT descends slowly by design.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from benchmarks.common import MODEL, drive, energy, from_numpy_state, run_config
from benchmarks.context import Context
from benchmarks.parallel import Job
from benchmarks.settings import Settings
from benchmarks.stats import aligned, proportion, summarize
from benchmarks.store import fingerprint
from benchmarks.targets import Shift, TargetTask
from gft.evaluation.reference import EnergyReference
from gft.tasks.runs import make_trainer

NAME = "stress"
METHODS = ("standard", "gft")
CURVE_REFERENCE = 5000  # points of the full reference behind curve readings (cost per reading ~ curve_n x this)
CLIP = 1.0  # the library default
BLOW_UP = 1000.0  # a reading this many times the first counts as a divergence


def needs(settings: Settings) -> tuple[set, set]:
    shift = Shift(settings.stress_shift)
    return {(shift.source, "independent")}, {shift.target_name}


@dataclass(frozen=True)
class StressRun:
    shift: str
    variant: str
    lr: float
    batch: int
    clip: bool
    seed: int
    steps: int
    every: int
    curve_n: int
    pool_size: int


def largest_rise(values: list[float]) -> float:
    """max over k of values[k] - min(values[:k + 1]): how far the curve ever climbs above its best so far."""
    best, rise = math.inf, 0.0
    for v in values:
        best = min(best, v)
        rise = max(rise, v - best)
    return rise


def upward_movement(values: list[float]) -> float:
    """The sum of the rises between successive readings: 0 for a monotone descent, larger as the curve jitters."""
    return float(sum(max(0.0, b - a) for a, b in zip(values, values[1:])))


def late_readings(row: dict) -> list[float]:
    """The curve's readings over the last 20% of the run (steps >= 0.8 x steps)."""
    steps = range(0, row["steps"] + 1, row["every"])
    return [v for s, v in zip(steps, row["curve"]) if s >= row["steps"] * 4 // 5]


def settled(row: dict) -> dict:
    """The row as the summary reads it: blow-ups count as divergences, and diverged runs have no curve measures."""
    curve = [v for v in row["curve"] if v is not None]
    blown = bool(curve) and max(curve) > BLOW_UP * max(abs(curve[0]), 1e-6)
    diverged = row["diverged"] or blown
    return dict(row, diverged=diverged, blew_up=blown and not row["diverged"],
                largest_rise=None if diverged else row["largest_rise"], final=None if diverged else row["final"],
                late_up=None if diverged else upward_movement(late_readings(row)))


def run_stress(task: StressRun, state: dict, curve_reference: EnergyReference) -> dict:
    config = run_config(task.variant, task.steps, lr=task.lr, batch=task.batch, seed=task.seed,
                                           grad_clip=CLIP if task.clip else math.inf, callback_every=task.every)
    trainer = make_trainer(TargetTask(Shift(task.shift).target, task.pool_size, task.curve_n), config,
                           base=from_numpy_state(MODEL, state))
    steps = list(range(0, task.steps + 1, task.every))
    driven = drive(trainer, steps, lambda m, _: energy(m, curve_reference, task.curve_n, task.seed))
    curve = [driven.evals[s] for s in steps if s in driven.evals]
    finite = [v for v in curve if math.isfinite(v)]
    diverged = driven.diverged_at is not None or len(finite) < len(steps)
    return {**asdict(task), "curve": curve, "diverged": diverged, "diverged_at": driven.diverged_at,
            "largest_rise": None if diverged else largest_rise(curve), "final": None if diverged else curve[-1]}


def _runs(settings: Settings) -> list[StressRun]:
    return [StressRun(settings.stress_shift, v, lr, batch, clip, seed, settings.stress_steps, settings.stress_every,
                      settings.curve_n, settings.pool_size)
            for lr in settings.stress_lrs for batch in settings.stress_batches for clip in (True, False)
            for v in METHODS for seed in settings.seed_list]


def jobs(ctx: Context) -> list[Job]:
    s = ctx.settings
    sizes = fingerprint({"pretrain": [s.pretrain_steps, s.batch, s.pool_size], "ref": [s.reference_n]})
    shift = Shift(s.stress_shift)
    curve_reference = EnergyReference(ctx.reference(shift.target_name)["reference"].points[:CURVE_REFERENCE])
    return [Job(run_stress, (r, ctx.state(shift.source, r.seed), curve_reference),
                f"{NAME} {r.variant} lr={r.lr:g} b={r.batch} clip={r.clip} seed {r.seed}",
                f"{NAME}/{r.variant}/{r.lr:g}/{r.batch}/{r.clip}/{r.seed}/{fingerprint(asdict(r))}/{sizes}", primary=r.clip)
            for r in _runs(s)]


def _cell(rows: list[dict], variant: str, lr: float, batch: int, clip: bool) -> list[dict]:
    return sorted((r for r in rows if (r["variant"], r["lr"], r["batch"], r["clip"]) == (variant, lr, batch, clip)),
                  key=lambda r: r["seed"])


def _seed_mean(rows: list[dict], variant: str, field: str, cells: list[tuple]) -> dict:
    """Seed -> mean of ``field`` over ``cells``; a seed with any missing cell (a divergence) reads None."""
    out: dict[int, list] = {}
    for lr, batch, clip in cells:
        for r in _cell(rows, variant, lr, batch, clip):
            out.setdefault(r["seed"], []).append(r[field])
    return {k: (float(np.mean(v)) if len(v) == len(cells) and all(x is not None for x in v) else None) for k, v in out.items()}


def summarise(rows: list[dict], ctx: Context) -> dict:
    s = ctx.settings
    table = []
    for lr in s.stress_lrs:
        for batch in s.stress_batches:
            for clip in (True, False):
                entry = {"lr": lr, "batch": batch, "clip": clip}
                for v in METHODS:
                    cell = [settled(r) for r in _cell(rows, v, lr, batch, clip)]
                    rate, low, high = proportion(sum(r["diverged"] for r in cell), len(cell))
                    entry[v] = {"runs": len(cell), "diverged": sum(r["diverged"] for r in cell), "rate": rate,
                                "rate_ci": [low, high],
                                **{f: summarize([r[f] for r in cell]).to_dict() for f in ("largest_rise", "late_up", "final")}}
                table.append(entry)
    clipped = [(lr, b, True) for lr in s.stress_lrs for b in s.stress_batches]
    rows = [settled(r) for r in rows]
    comparisons = []
    for field, question, primary in (
        ("largest_rise", "largest rise above the running best, mean over the clipped grid", True),
        ("late_up", "fluctuation over the last 20% (upward movement; both on the target alone), mean over the clipped grid",
         False),
        ("final", "final energy, mean over the clipped grid", False),
    ):
        a, b = aligned(_seed_mean(rows, "gft", field, clipped), _seed_mean(rows, "standard", field, clipped))
        comparisons.append({"id": f"stress:{field}", "question": question, "a": "gft", "b": "standard", "metric": field,
                            "lower_is_better": True, "values_a": a, "values_b": b, "null": None, "primary_candidate": primary})
    divergence = {}
    for v in METHODS:
        n = sum(1 for r in rows if r["variant"] == v)
        k = sum(1 for r in rows if r["variant"] == v and r["diverged"])
        rate, low, high = proportion(k, n)
        divergence[v] = {"runs": n, "diverged": k, "rate": rate, "rate_ci": [low, high]}
    curves = {}
    for v in METHODS:
        for lr in s.stress_lrs:
            cell = [r for r in _cell(rows, v, lr, s.stress_batches[0], True) if not r["diverged"]]
            if cell:
                curves[f"{v} lr={lr:g}"] = np.mean([r["curve"] for r in cell], axis=0).tolist()
    return {"table": table, "comparisons": comparisons, "divergence": divergence, "curves": curves,
            "curve_steps": list(range(0, s.stress_steps + 1, s.stress_every))}
