"""Budget parity: quality after the same number of steps (and against training seconds).

GFT is run once per budget B (its anneal spans 80% of B, so a short budget is a faster anneal, not
the start of a long one) and read at B and where its tau reaches 0 (0.8 B). Standard fine-tuning
has no schedule: its run to B steps is the first B steps of a longer run with the same seed, so one
run of the largest budget is read at every budget and every 0.8 B.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from benchmarks.common import MODEL, drive, energy, from_numpy_state, run_config
from benchmarks.context import Context
from benchmarks.parallel import Job
from benchmarks.settings import Settings
from benchmarks.stats import aligned, summarize
from benchmarks.store import fingerprint
from benchmarks.targets import Shift, TargetTask
from gft.tasks.runs import make_trainer

NAME = "budget"
METHODS = ("standard", "gft")
PRIMARY_BUDGET_INDEX = 2  # the endpoint budget: the third (2,000 steps in the full suite), or the last if fewer


def needs(settings: Settings) -> tuple[set, set]:
    shifts = [Shift(s) for s in settings.budget_shifts]
    return {(s.source, "independent") for s in shifts}, {s.target_name for s in shifts}


@dataclass(frozen=True)
class BudgetRun:
    shift: str
    variant: str
    budget: int  # the run's length; standard's single run is read at every budget up to it
    read_at: tuple[int, ...]
    seed: int
    batch: int
    pool_size: int
    eval_n: int


def run_budget(task: BudgetRun, state: dict, reference) -> dict:
    shift = Shift(task.shift)
    config = run_config(task.variant, task.budget, batch=task.batch, seed=task.seed, callback_every=task.budget)
    trainer = make_trainer(TargetTask(shift.target, task.pool_size, task.eval_n), config, base=from_numpy_state(MODEL, state))
    driven = drive(trainer, list(task.read_at), lambda m, _: energy(m, reference, task.eval_n, task.seed))
    return {**asdict(task), "energy": {str(k): v for k, v in driven.evals.items()},
            "seconds": {str(k): v for k, v in driven.seconds.items()}, "diverged_at": driven.diverged_at}


def _runs(settings: Settings) -> list[BudgetRun]:
    budgets = settings.budgets
    tau0 = tuple(b * 4 // 5 for b in budgets)
    out = []
    for shift in settings.budget_shifts:
        for seed in settings.seed_list:
            common = dict(shift=shift, seed=seed, batch=settings.batch, pool_size=settings.pool_size, eval_n=settings.eval_n)
            out.append(BudgetRun(variant="standard", budget=budgets[-1], read_at=tuple(sorted({*budgets, *tau0})), **common))
            for b in budgets:
                out.append(BudgetRun(variant="gft", budget=b, read_at=(b * 4 // 5, b), **common))
    return out


def jobs(ctx: Context) -> list[Job]:
    s = ctx.settings
    sizes = fingerprint({"pretrain": [s.pretrain_steps, s.batch, s.pool_size], "ref": [s.reference_n, s.eval_n]})
    primary_budget = s.budgets[min(PRIMARY_BUDGET_INDEX, len(s.budgets) - 1)]
    return [Job(run_budget, (r, ctx.state(Shift(r.shift).source, r.seed), ctx.reference(Shift(r.shift).target_name)["reference"]),
                f"{NAME} {r.shift} {r.variant} B={r.budget} seed {r.seed}",
                f"{NAME}/{r.shift}/{r.variant}/{r.budget}/{r.seed}/{fingerprint(asdict(r))}/{sizes}",
                primary=r.variant == "standard" or r.budget == primary_budget)
            for r in _runs(s)]


def _reading(rows: list[dict], shift: str, variant: str, budget: int, step: int, field: str = "energy") -> dict:
    """Seed -> value of ``field`` at ``step`` in the runs that answer budget ``budget``."""
    return {r["seed"]: r[field].get(str(step)) for r in rows
            if r["shift"] == shift and r["variant"] == variant and (variant != "gft" or r["budget"] == budget)}


def summarise(rows: list[dict], ctx: Context) -> dict:
    s = ctx.settings
    table, comparisons = [], []
    for shift in s.budget_shifts:
        null = ctx.reference(Shift(shift).target_name)["null"]
        for i, b in enumerate(s.budgets):
            for point, step in (("budget", b), ("tau = 0", b * 4 // 5)):
                entry = {"shift": shift, "budget": b, "point": point, "step": step, "null": null}
                for v in METHODS:
                    entry[v] = summarize(_reading(rows, shift, v, b, step).values()).to_dict()
                    entry[f"{v}_seconds"] = summarize(_reading(rows, shift, v, b, step, "seconds").values()).to_dict()
                table.append(entry)
                values_a, values_b = aligned(_reading(rows, shift, "gft", b, step), _reading(rows, shift, "standard", b, step))
                comparisons.append({
                    "id": f"budget:{shift}:{b}:{'end' if point == 'budget' else 'tau0'}",
                    "question": f"{shift}: energy after {step} steps" + (" (GFT's tau reaches 0)" if point != "budget" else ""),
                    "a": "gft", "b": "standard", "lower_is_better": True, "metric": "energy",
                    "values_a": values_a, "values_b": values_b,
                    "null": null, "primary_candidate": i == min(PRIMARY_BUDGET_INDEX, len(s.budgets) - 1) and point == "budget",
                })
    return {"table": table, "comparisons": comparisons}
