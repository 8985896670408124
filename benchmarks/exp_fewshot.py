"""Few data from a related source: N target points, a model pretrained on a law the target is a
transformed copy of. Does the anneal keep what the pretrained model knows?

Every run holds out ``val_fraction`` of its N points (at least 2) and reads its validation energy every
``fewshot_every`` steps, keeping the best weights (early stopping, for every method). Both the final
and the validation-chosen weights are then measured against the *full* target law (energy of
``eval_n`` samples to the fixed reference), with the memorisation ratio (nearest-neighbour distance to
the training points, relative to fresh target draws: near 1 generalises, near 0 copies). The first
shift sweeps N and runs every baseline at ``fewshot_extras_size``; the others run the core methods there.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from benchmarks.common import MODEL, from_numpy_state, nn_distance_ratio, run_config, samples, train_to_end
from benchmarks.context import Context
from benchmarks.parallel import Job
from benchmarks.settings import Settings
from benchmarks.stats import aligned, summarize
from benchmarks.store import fingerprint
from benchmarks.targets import Shift, TargetTask
from gft.core.schedules import lambda_of_tau
from gft.tasks.runs import Monitor, best_point, best_weights, make_trainer

NAME = "fewshot"
CORE = ("standard", "gft", "gft-stop")
EXTRAS = ("l2sp", "standard-slow", "standard-ema", "gft-constant")
PRETRAINED = "pretrained"
HELD_OUT_NN = 2000  # fresh target draws behind the memorisation ratio's denominator


def needs(settings: Settings) -> tuple[set, set]:
    shifts = [Shift(s) for s in settings.fewshot_shifts]
    return {(s.source, "independent") for s in shifts}, {s.target_name for s in shifts}


@dataclass(frozen=True)
class FewshotRun:
    shift: str
    variant: str  # a VARIANTS label, or "pretrained" (the starting model, measured once per seed)
    size: int
    seed: int
    steps: int
    every: int
    val_fraction: float
    batch: int
    curve_n: int
    eval_n: int
    pool_size: int


def _measure(model, task: FewshotRun, reference, train, held_out) -> dict:
    x = samples(model, task.eval_n, task.seed).x
    return {"energy": reference.energy(x), "nn_ratio": nn_distance_ratio(x, train, held_out)}


def run_fewshot(task: FewshotRun, state: dict, reference) -> dict:
    shift = Shift(task.shift)
    target_task = TargetTask(shift.target, task.pool_size, task.curve_n)
    pretrained = from_numpy_state(MODEL, state)
    held_out = shift.target.held_out(HELD_OUT_NN, task.seed)
    if task.variant == PRETRAINED:
        train = target_task.pool(task.seed, task.size)
        return {**asdict(task), "final": _measure(pretrained, task, reference, train, held_out)}
    config = run_config(task.variant, task.steps, batch=task.batch, seed=task.seed, callback_every=task.every)
    monitor = Monitor(eval_every=task.every, eval_points=task.curve_n, val_fraction=task.val_fraction)
    trainer = make_trainer(target_task, config, base=pretrained, limit=task.size, monitor=monitor)
    diverged = train_to_end(trainer)
    train = trainer.target
    keeper = best_weights(trainer)
    best = best_point(trainer.history)
    row = {**asdict(task), "diverged": diverged, "train_points": len(train), "val_points": len(keeper.validation),
           "final": None if diverged else _measure(trainer.result_model, task, reference, train, held_out)}
    if keeper.best_state is not None and best is not None:
        row["best"] = _measure(keeper.best_model(trainer.result_model), task, reference, train, held_out)
        row["best_step"] = best["step"]
        row["best_tau"] = best.get("tau")
        row["best_lambda"] = lambda_of_tau(best["tau"]) if best.get("tau") is not None else None
    return row


def _plan(settings: Settings) -> list[tuple[str, int, tuple[str, ...]]]:
    """(shift, N, variants): the first shift sweeps N with the core methods and runs every baseline at the extras
    size; the others run the core methods at the extras size only."""
    plan = []
    for i, shift in enumerate(settings.fewshot_shifts):
        sizes = settings.fewshot_sizes if i == 0 else (settings.fewshot_extras_size,)
        for size in sizes:
            variants = CORE + EXTRAS if size == settings.fewshot_extras_size and i == 0 else CORE
            plan.append((shift, size, (PRETRAINED, *variants)))
    return plan


def jobs(ctx: Context) -> list[Job]:
    s = ctx.settings
    sizes = fingerprint({"pretrain": [s.pretrain_steps, s.batch, s.pool_size], "ref": [s.reference_n, s.eval_n]})
    out = []
    for shift, size, variants in _plan(s):
        sh = Shift(shift)
        for variant in variants:
            for seed in s.seed_list:
                r = FewshotRun(shift, variant, size, seed, s.fewshot_steps, s.fewshot_every, s.val_fraction, s.batch,
                               s.curve_n, s.eval_n, s.pool_size)
                out.append(Job(run_fewshot, (r, ctx.state(sh.source, seed), ctx.reference(sh.target_name)["reference"]),
                               f"{NAME} {shift} N={size} {variant} seed {seed}",
                               f"{NAME}/{shift}/{size}/{variant}/{seed}/{fingerprint(asdict(r))}/{sizes}",
                               primary=size == s.fewshot_extras_size and variant in ("gft", "standard")))
    return out


def _values(rows: list[dict], shift: str, size: int, variant: str, which: str, field: str = "energy") -> dict:
    out = {}
    for r in rows:
        if (r["shift"], r["size"], r["variant"]) == (shift, size, variant):
            part = r.get(which) if variant != PRETRAINED else r.get("final")
            out[r["seed"]] = part.get(field) if part else None
    return out


def summarise(rows: list[dict], ctx: Context) -> dict:
    s = ctx.settings
    table, comparisons = [], []
    for shift, size, variants in _plan(s):
        null = ctx.reference(Shift(shift).target_name)["null"]
        for v in variants:
            entry = {"shift": shift, "size": size, "variant": v, "null": null}
            for which in ("final", "best"):
                if v == PRETRAINED and which == "best":
                    continue
                entry[which] = {f: summarize(_values(rows, shift, size, v, which, f).values()).to_dict() for f in ("energy", "nn_ratio")}
            if v != PRETRAINED:
                chosen = [r for r in rows if (r["shift"], r["size"], r["variant"]) == (shift, size, v)]
                entry["best_lambda"] = summarize([r.get("best_lambda") for r in chosen]).to_dict()
                entry["best_step"] = summarize([r.get("best_step") for r in chosen]).to_dict()
                entry["diverged"] = sum(bool(r.get("diverged")) for r in chosen)
            table.append(entry)
        primary = size == s.fewshot_extras_size
        pairs = [("gft", "best", "standard", "best", primary,
                  "validation-chosen GFT against validation-chosen standard (early stopping)"),
                 ("gft", "final", "standard", "final", False, "final GFT against final standard"),
                 ("gft-stop", "final", "standard", "best", False, "GFT stopped at tau 0.5 against early-stopped standard"),
                 ("gft", "best", PRETRAINED, "final", False, "validation-chosen GFT against the pretrained model"),
                 ("standard", "best", PRETRAINED, "final", False, "early-stopped standard against the pretrained model")]
        if "l2sp" in variants:
            pairs += [("gft", "best", v, "best", False, f"validation-chosen GFT against validation-chosen {v}") for v in EXTRAS]
        for a, wa, b, wb, is_primary, question in pairs:
            va, vb = aligned(_values(rows, shift, size, a, wa), _values(rows, shift, size, b, wb))
            comparisons.append({"id": f"fewshot:{shift}:N={size}:{a}.{wa}-vs-{b}.{wb}",
                                "question": f"{shift}, N = {size}: {question}", "a": f"{a} ({wa})", "b": f"{b} ({wb})",
                                "metric": "energy to the full law", "lower_is_better": True, "values_a": va, "values_b": vb,
                                "null": null, "primary_candidate": is_primary})
    return {"table": table, "comparisons": comparisons}

