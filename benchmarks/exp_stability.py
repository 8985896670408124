"""Experiment 1, stability and quality: GFT schedules against standard fine-tuning and from-scratch
training on several 2D shifts, W2 against step over seeds."""

from __future__ import annotations

from collections import defaultdict

import numpy as np

from benchmarks.finetune2d import FinetuneTask, run_finetune
from benchmarks.measures import summarize, verdict
from benchmarks.parallel import Job, is_error
from benchmarks.settings import SCHEDULES, Settings
from benchmarks.targets import Shift

NAME = "stability"
# (metric, lower is better); steps_to_threshold is censored at the budget when never reached.
COMPARED = (("final_w2", True), ("largest_rise", True), ("diff_variance", True), ("spearman", True),
            ("steps_to_threshold", True))


def methods() -> list[tuple[str, str]]:
    """(method, schedule) pairs in table order."""
    return [("gft", s) for s in SCHEDULES] + [("standard", "constant:0"), ("scratch", "constant:0")]


def sources(settings: Settings) -> set[str]:
    return {Shift(s).source for s in settings.stability_shifts}


def jobs(settings: Settings, pretrained: dict[str, dict]) -> list[Job]:
    out = []
    for shift in settings.stability_shifts:
        for method, schedule in methods():
            for seed in settings.seed_list:
                task = FinetuneTask(
                    experiment=NAME, shift=shift, method=method, schedule=schedule, seed=seed,
                    steps=settings.stability_steps, batch=settings.batch, pool_size=settings.pool_size,
                    eval_points=settings.eval_points, evals=settings.stability_evals, measure="curve",
                )
                out.append(Job(run_finetune, (task, pretrained[Shift(shift).source]["state"]), f"{NAME} {shift} {task.label} seed {seed}"))
    return out


def _censored(row: dict) -> float:
    s = row.get("steps_to_threshold")
    return float(s) if s is not None else float(row["steps"] + row["steps"] // max(row["evals"], 1))


def summarise(rows: list[dict], settings: Settings) -> dict:
    ok = [r for r in rows if not is_error(r)]
    groups: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for r in ok:
        groups[(r["shift"], r["label"])].append(r)
    summary, curves = [], []
    for (shift, label), rs in groups.items():
        rs.sort(key=lambda r: r["seed"])
        reached = [r["steps_to_threshold"] for r in rs if r["steps_to_threshold"] is not None]
        summary.append({
            "shift": shift, "label": label, "seeds": len(rs),
            **{m: summarize([r[m] for r in rs]).to_dict() for m in
               ("final_w2", "w2_floor", "w2_start", "spearman", "diff_variance", "largest_rise", "steps_per_second")},
            "steps_to_threshold": summarize(reached).to_dict(),
            "reached_threshold": f"{len(reached)}/{len(rs)}",
        })
        w2 = np.array([r["curve_w2"] for r in rs], dtype=np.float64)
        curves.append({"shift": shift, "label": label, "steps": rs[0]["curve_steps"],
                       "mean": np.nanmean(w2, axis=0).tolist(),
                       "sd": (np.nanstd(w2, axis=0, ddof=1) if len(rs) > 1 else np.zeros(w2.shape[1])).tolist(),
                       "floor": float(np.mean([r["w2_floor"] for r in rs]))})
    verdicts = []
    for shift in settings.stability_shifts:
        base = sorted(groups.get((shift, "standard"), []), key=lambda r: r["seed"])
        for _, schedule in methods()[: len(SCHEDULES)]:
            gft = sorted(groups.get((shift, f"gft {schedule}"), []), key=lambda r: r["seed"])
            if not gft or not base:
                continue
            for metric, lower in COMPARED:
                get = _censored if metric == "steps_to_threshold" else (lambda r, m=metric: r[m])
                verdicts.append({"shift": shift, "gft": f"gft {schedule}", "against": "standard", "metric": metric,
                                 "verdict": verdict([get(r) for r in gft], [get(r) for r in base], lower)})
    return {"summary": summary, "curves": curves, "verdicts": verdicts}
