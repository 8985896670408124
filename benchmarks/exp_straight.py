"""Retention of straight paths: a model pretrained with the OT coupling (nearly straight sampling paths,
so few Euler steps suffice) is fine-tuned with the independent coupling, whose own solution curves.
Does GFT's pull toward the pretrained drift keep the paths straighter, and few-step sampling better?

Measures after each method: straightness (0 = straight, larger as paths bend; see
gft.evaluation.metrics.path_geometry) and
the energy to the target's reference after 1, 2, 4 and 100 Euler steps.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from benchmarks.common import MODEL, energy, from_numpy_state, run_config, straightness, train_to_end
from benchmarks.context import Context
from benchmarks.parallel import Job
from benchmarks.settings import Settings
from benchmarks.stats import aligned, summarize
from benchmarks.store import fingerprint
from benchmarks.targets import Shift, TargetTask
from gft.tasks.runs import make_trainer

NAME = "straight"
METHODS = ("standard", "gft")
PRETRAINED = "pretrained (OT)"
STEP_COUNTS = (1, 2, 4, 100)
STRAIGHTNESS_N = 2000


def needs(settings: Settings) -> tuple[set, set]:
    shift = Shift(settings.straight_shift)
    return {(shift.source, "ot")}, {shift.target_name}


@dataclass(frozen=True)
class StraightRun:
    shift: str
    variant: str
    seed: int
    steps: int
    batch: int
    eval_n: int
    pool_size: int


def run_straight(task: StraightRun, state: dict, reference) -> dict:
    model = from_numpy_state(MODEL, state)
    diverged = False
    if task.variant != PRETRAINED:
        config = run_config(task.variant, task.steps, batch=task.batch, seed=task.seed, coupling="independent",
                                               callback_every=task.steps)
        trainer = make_trainer(TargetTask(Shift(task.shift).target, task.pool_size, task.eval_n), config, base=model)
        diverged = train_to_end(trainer)
        model = trainer.result_model
    if diverged:
        return {**asdict(task), "diverged": True}
    return {**asdict(task), "diverged": False, "straightness": straightness(model, STRAIGHTNESS_N, task.seed),
            "energy": {str(k): energy(model, reference, task.eval_n, task.seed, k) for k in STEP_COUNTS}}


def jobs(ctx: Context) -> list[Job]:
    s = ctx.settings
    shift = Shift(s.straight_shift)
    sizes = fingerprint({"pretrain": [s.pretrain_steps, s.batch, s.pool_size], "ref": [s.reference_n, s.eval_n]})
    out = []
    for variant in (PRETRAINED, *METHODS):
        for seed in s.seed_list:
            r = StraightRun(s.straight_shift, variant, seed, s.straight_steps, s.batch, s.eval_n, s.pool_size)
            out.append(Job(run_straight, (r, ctx.state(shift.source, seed, "ot"), ctx.reference(shift.target_name)["reference"]),
                           f"{NAME} {variant} seed {seed}", f"{NAME}/{variant}/{seed}/{fingerprint(asdict(r))}/{sizes}",
                           primary=variant != PRETRAINED))
    return out


def _values(rows: list[dict], variant: str, field: str, k: int | None = None) -> dict:
    out = {}
    for r in rows:
        if r["variant"] == variant:
            out[r["seed"]] = None if r.get("diverged") else (r[field] if k is None else r[field][str(k)])
    return out


def summarise(rows: list[dict], ctx: Context) -> dict:
    null = ctx.reference(Shift(ctx.settings.straight_shift).target_name)["null"]
    table = []
    for v in (PRETRAINED, *METHODS):
        entry = {"variant": v, "straightness": summarize(_values(rows, v, "straightness").values()).to_dict()}
        for k in STEP_COUNTS:
            entry[f"energy_{k}"] = summarize(_values(rows, v, "energy", k).values()).to_dict()
        table.append(entry)
    comparisons = []
    for field, k, primary, question, lower in (
        ("energy", 2, True, "energy after 2 Euler steps", True),
        ("energy", 1, False, "energy after 1 Euler step", True),
        ("energy", 4, False, "energy after 4 Euler steps", True),
        ("energy", 100, False, "energy after 100 Euler steps", True),
        ("straightness", None, False, "straightness of the sampling paths (0 = straight)", True),
    ):
        a, b = aligned(_values(rows, "gft", field, k), _values(rows, "standard", field, k))
        comparisons.append({"id": f"straight:{field}{'' if k is None else k}", "question": f"{ctx.settings.straight_shift}, "
                            f"OT-pretrained, fine-tuned with the independent coupling: {question}", "a": "gft", "b": "standard",
                            "metric": field, "lower_is_better": lower, "values_a": a, "values_b": b,
                            "null": null if field == "energy" else None, "primary_candidate": primary})
    return {"table": table, "comparisons": comparisons, "null": null}
