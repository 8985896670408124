"""Curated scenarios of the explorer's gallery: a question, the runs that answer it, and how to run them.

A scenario fine-tunes one shipped pretrained 2D model in several ways on the same seed and records, for
each run, snapshots of fixed particles (the animation) and its W2 curve. ``scripts/make_scenarios.py``
runs them once and ships the results (:mod:`gft.tasks.scenario_assets`), so the gallery opens instantly;
the app's "train it live" button builds the very same trainers with :func:`scenario_trainer`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Callable

from gft.core.models import FlowModel
from gft.core.training import Snapshot, TrainConfig, Trainer, TrainingDiverged
from gft.evaluation.monitors import heldout_w2
from gft.tasks.runs import Monitor, best_point, make_trainer, task_for


@dataclass(frozen=True)
class ScenarioRun:
    """One panel of a scenario: a name, what it trains on and how."""

    name: str  # its panel title; the first word picks its colour (gft, standard, ot, ...)
    target: str
    config: TrainConfig
    limit: int | None = None  # only this many target samples (limited data)
    val_fraction: float = 0.0  # a validation split whose best checkpoint is reported (needs eval_every)

    def __post_init__(self) -> None:
        if not self.name.strip():
            raise ValueError("a scenario run needs a non-empty name")
        if self.config.method == "pretrain":
            raise ValueError(f"run {self.name!r}: scenarios fine-tune; method must not be 'pretrain'")
        if self.limit is not None and self.limit < 2:
            raise ValueError(f"run {self.name!r}: limit must be >= 2 or None, got {self.limit}")


@dataclass(frozen=True)
class Scenario:
    """A question, a shipped pretrained model and the runs that answer it (same seed, same particles)."""

    key: str
    title: str
    question: str  # one sentence, what a card shows
    look_for: str  # one or two sentences: what the picture shows, written before the numbers are known
    base: str  # a shipped pretrained 2D model (gft.tasks.shipped)
    runs: tuple[ScenarioRun, ...]
    particles: int = 200  # animated particles (the same noise in every run and frame)
    trajectory_steps: int = 10  # Euler steps of each drawn trajectory (few steps show how straight paths are)
    frames: int = 20  # snapshots per run (plus step 0)
    eval_points: int = 500  # samples behind each W2 of the curve
    judge_few_steps: bool = False  # the verdict compares few-step W2 (the couplings' point), not the 50-step W2 at the end

    def __post_init__(self) -> None:
        if not self.key.isidentifier():
            raise ValueError(f"scenario key must be an identifier (a file name), got {self.key!r}")
        if not self.runs:
            raise ValueError(f"scenario {self.key!r} needs at least one run")
        if len({r.name for r in self.runs}) != len(self.runs):
            raise ValueError(f"scenario {self.key!r}: run names must differ")
        if not 2 <= self.frames <= 100:
            raise ValueError(f"frames must be in [2, 100], got {self.frames}")
        if not 10 <= self.particles <= 2000:
            raise ValueError(f"particles must be in [10, 2000], got {self.particles}")
        if not 1 <= self.trajectory_steps <= 100:
            raise ValueError(f"trajectory_steps must be in [1, 100], got {self.trajectory_steps}")
        steps = {r.config.steps for r in self.runs}
        if len(steps) != 1:
            # One shared slider: every run records at the same steps.
            raise ValueError(f"scenario {self.key!r}: every run must train the same number of steps, got {sorted(steps)}")

    @property
    def steps(self) -> int:
        return self.runs[0].config.steps

    def every(self) -> int:
        """Steps between snapshots (and between W2 measurements)."""
        return max(1, self.steps // self.frames)

    def config_of(self, run: ScenarioRun) -> TrainConfig:
        return replace(run.config, callback_every=self.every(), device="cpu")

    def monitor_of(self, run: ScenarioRun) -> Monitor:
        return Monitor(eval_every=self.every(), eval_points=self.eval_points, particles=self.particles,
                       trajectory_steps=self.trajectory_steps, val_fraction=run.val_fraction)

    def tiny(self) -> "Scenario":
        """The same scenario at a few steps and particles: for tests of the script, not for looking at."""
        runs = tuple(replace(r, config=replace(r.config, steps=8, warmup=0)) for r in self.runs)
        return replace(self, runs=runs, particles=16, trajectory_steps=2, frames=2, eval_points=50)


def scenario_trainer(scenario: Scenario, run: ScenarioRun, base: FlowModel) -> Trainer:
    """The trainer of one run of a scenario (the script and the app's live re-run both build it here)."""
    return make_trainer(task_for(run.target), scenario.config_of(run), base=base, limit=run.limit, monitor=scenario.monitor_of(run))


@dataclass
class RunRecord:
    """What one run of a scenario produced: its snapshots with trajectories and its history."""

    name: str
    snapshots: list[Snapshot]
    history: list[dict]
    diverged_at: int | None = None  # the step a diverging run stopped at (TrainingDiverged), else None
    seconds: float = 0.0
    few_step_w2: float | None = None  # W2 of the final model's samples with the scenario's trajectory_steps Euler steps

    @property
    def best(self) -> dict | None:
        """The validation-chosen history row (runs with a validation split), else None."""
        return best_point(self.history)


def run_scenario(scenario: Scenario, base: FlowModel, progress: Callable[[str], None] | None = None) -> list[RunRecord]:
    """Train every run of ``scenario`` from ``base`` (seeded, CPU) and record what the gallery shows.

    A run that diverges is part of the story (a learning rate too high): it is recorded up to the step
    where the trainer stopped it, not raised.
    """
    records = []
    for run in scenario.runs:
        trainer = scenario_trainer(scenario, run, base)
        snaps: list[Snapshot] = []
        diverged = None
        try:
            trainer.run(callback=lambda s: snaps.append(s) if s.trajectory is not None else None)
        except TrainingDiverged:
            diverged = trainer.step
        finally:
            trainer.close()
        few = None if diverged is not None else few_step_w2(scenario, run, trainer.result_model)
        records.append(RunRecord(run.name, snaps, list(trainer.history), diverged, trainer.train_seconds, few))
        if progress is not None:
            progress(f"{scenario.key} / {run.name}: {len(snaps)} snapshots, {trainer.train_seconds:.1f} s"
                     + (f", diverged at step {diverged}" if diverged is not None else ""))
    return records


def few_step_w2(scenario: Scenario, run: ScenarioRun, model: FlowModel) -> float:
    """W2 to held-out target draws of samples made with the few Euler steps the scenario draws (its paths' quality)."""
    task = task_for(run.target)
    seed = run.config.seed
    return heldout_w2(task.held_out(seed), scenario.eval_points, seed, scenario.trajectory_steps)(model)


# ---- the gallery ---------------------------------------------------------------------------------
_SHIFT = ("moons", "8gaussians")  # the explorer's running example: two moons to eight clusters


def _gft(steps: int, lr: float = 3e-3, schedule: str = "stages:4,0.5,3", coupling: str = "ot", **kw) -> TrainConfig:
    return TrainConfig(method="gft", steps=steps, batch=256, lr=lr, seed=0, schedule=schedule, final_fraction=0.25, coupling=coupling, **kw)


def _standard(steps: int, lr: float = 3e-3, coupling: str = "ot") -> TrainConfig:
    return TrainConfig(method="standard", steps=steps, batch=256, lr=lr, seed=0, schedule="constant:0", coupling=coupling)


SCENARIOS: tuple[Scenario, ...] = (
    Scenario(
        key="anneal_or_jump",
        title="Anneal or jump?",
        question="Fine-tuning moons → eight clusters: does walking τ down beat jumping straight to the target?",
        look_for="Standard fine-tuning regresses onto the target from step 1; GFT first holds the drift near the "
                 "pretrained one (λ large) and lets go as τ falls, so its particles move later and more smoothly.",
        base=_SHIFT[0],
        runs=(ScenarioRun("gft (anneal τ 4 → 0)", _SHIFT[1], _gft(1500)), ScenarioRun("standard (τ = 0)", _SHIFT[1], _standard(1500))),
    ),
    Scenario(
        key="couplings",
        title="Couplings straighten paths",
        question="With only 3 Euler steps, which pairing of noise and data gives the sharpest samples?",
        look_for="Every panel draws 3-step trajectories. Pairing noise and data by optimal transport (exact or "
                 "Sinkhorn) gives straighter paths, so few steps land closer to the clusters than random pairs.",
        base=_SHIFT[0],
        runs=tuple(ScenarioRun(f"{c} coupling", _SHIFT[1], _gft(1500, coupling=c)) for c in ("independent", "ot", "sinkhorn")),
        trajectory_steps=3,
        judge_few_steps=True,
    ),
    Scenario(
        key="sixteen_points",
        title="Sixteen points: stop the anneal early",
        question="With only 16 target points, is it better to anneal all the way to τ = 0 or to stop early?",
        look_for="Going to τ = 0 fits the few points it has; a stop temperature keeps a share λ of the pretrained "
                 "drift; the validation split (4 of the 16 points) picks the checkpoint with the lowest validation "
                 "energy. The W2 is measured against fresh target draws, not the 16 points.",
        base="gaussian",
        runs=(
            ScenarioRun("standard (τ = 0)", "8gaussians", _standard(800), limit=16),
            ScenarioRun("gft to τ = 0", "8gaussians", _gft(800, schedule="stages:8,0.5,4"), limit=16, val_fraction=0.25),
            ScenarioRun("gft, stop at τ = 0.5", "8gaussians", _gft(800, schedule="stages:8,0.5,4", tau_end=0.5), limit=16),
        ),
    ),
    Scenario(
        key="lr_too_high",
        title="A learning rate too high",
        question="At a learning rate 10× too high, does the pretrained pull of GFT keep training on track?",
        look_for="Both runs use lr 0.03, ten times the other scenarios'. A step too large overshoots, and the "
                 "particles jitter from frame to frame. GFT's early target is mostly the pretrained drift, which the "
                 "model already matches; whether that pull is enough is what the W2 numbers say.",
        base=_SHIFT[0],
        runs=(ScenarioRun("gft (lr 0.03)", _SHIFT[1], _gft(1500, lr=3e-2)), ScenarioRun("standard (lr 0.03)", _SHIFT[1], _standard(1500, lr=3e-2))),
    ),
)


def scenario(key: str) -> Scenario:
    """The scenario named ``key``; an unknown key is a ValueError listing the known ones."""
    for s in SCENARIOS:
        if s.key == key:
            return s
    raise ValueError(f"no scenario named {key!r}; known: {', '.join(s.key for s in SCENARIOS)}")
