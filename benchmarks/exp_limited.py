"""Experiment 3, diversity under limited data: target sets of 10 to all samples, GFT against standard
fine-tuning; mode coverage and memorisation (nearest-neighbour distance ratio) of the samples."""

from __future__ import annotations

from collections import defaultdict

from benchmarks.finetune2d import FinetuneTask, run_finetune
from benchmarks.measures import summarize, verdict
from benchmarks.parallel import Job, is_error
from benchmarks.settings import SCHEDULES, Settings

NAME = "limited_data"
SOURCE = "gaussian"
METHODS = (("gft", SCHEDULES[0]), ("standard", "constant:0"))


def sources(settings: Settings) -> set[str]:
    return {SOURCE}


def size_label(limit: int | None) -> str:
    return "all" if limit is None else str(limit)


def jobs(settings: Settings, pretrained: dict[str, dict]) -> list[Job]:
    out = []
    for target in settings.limited_targets:
        for limit in settings.limited_sizes:
            for method, schedule in METHODS:
                for seed in settings.seed_list:
                    task = FinetuneTask(
                        experiment=NAME, shift=f"{SOURCE}->{target}", method=method, schedule=schedule, seed=seed,
                        steps=settings.limited_steps, batch=settings.batch, pool_size=settings.pool_size,
                        eval_points=settings.coupling_eval_points, limit=limit, measure="diversity",
                    )
                    out.append(Job(run_finetune, (task, pretrained[SOURCE]["state"]),
                                   f"{NAME} {target} n={size_label(limit)} {task.label} seed {seed}"))
    return out


def summarise(rows: list[dict], settings: Settings) -> dict:
    ok = [r for r in rows if not is_error(r)]
    groups: dict[tuple[str, str, str], list[dict]] = defaultdict(list)
    for r in ok:
        groups[(r["shift"], size_label(r["limit"]), r["label"])].append(r)
    summary = []
    for (shift, size, label), rs in groups.items():
        rs.sort(key=lambda r: r["seed"])
        summary.append({"shift": shift, "size": size, "label": label, "seeds": len(rs),
                        **{m: summarize([r.get(m) for r in rs]).to_dict() for m in
                           ("w2", "w2_floor", "mode_coverage", "train_mode_coverage", "nn_distance_ratio")}})
    verdicts = []
    for target in settings.limited_targets:
        shift = f"{SOURCE}->{target}"
        for limit in settings.limited_sizes:
            size = size_label(limit)
            gft = sorted(groups.get((shift, size, f"gft {SCHEDULES[0]}"), []), key=lambda r: r["seed"])
            std = sorted(groups.get((shift, size, "standard"), []), key=lambda r: r["seed"])
            if not gft or not std:
                continue
            for metric, lower in (("w2", True), ("mode_coverage", False), ("nn_distance_ratio", False)):
                verdicts.append({"shift": shift, "size": size, "metric": metric,
                                 "verdict": verdict([r.get(metric) for r in gft], [r.get(metric) for r in std], lower)})
    return {"summary": summary, "verdicts": verdicts}
