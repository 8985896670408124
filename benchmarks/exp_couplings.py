"""Experiment 2, couplings during GFT: path length, straightness and W2 at 1/2/4/8 Euler steps and with
dopri5 (its real NFE), for independent, exact OT and Sinkhorn couplings; standard fine-tuning beside."""

from __future__ import annotations

from collections import defaultdict

from benchmarks.finetune2d import FinetuneTask, run_finetune
from benchmarks.measures import summarize, verdict
from benchmarks.parallel import Job, is_error
from benchmarks.settings import SCHEDULES, Settings
from benchmarks.targets import Shift

NAME = "couplings"
SHIFT = "moons->8gaussians"  # a registered target, so gft.evaluation.points.evaluate_2d applies as is
GFT_COUPLINGS = ("independent", "ot", "sinkhorn")
STANDARD_COUPLINGS = {"quick": ("ot",), "full": ("independent", "ot")}
FEW = ("1", "2", "4", "8")


def sources(settings: Settings) -> set[str]:
    return {Shift(SHIFT).source}


def runs(settings: Settings) -> list[tuple[str, str]]:
    return [("gft", c) for c in GFT_COUPLINGS] + [("standard", c) for c in STANDARD_COUPLINGS[settings.mode]]


def jobs(settings: Settings, pretrained: dict[str, dict]) -> list[Job]:
    out = []
    for method, coupling in runs(settings):
        for seed in settings.seed_list:
            task = FinetuneTask(
                experiment=NAME, shift=SHIFT, method=method, schedule=SCHEDULES[0], coupling=coupling, seed=seed,
                steps=settings.coupling_steps, batch=settings.batch, pool_size=settings.pool_size,
                eval_points=settings.coupling_eval_points, measure="full2d",
                sinkhorn_reg=settings.sinkhorn_reg,
            )
            out.append(Job(run_finetune, (task, pretrained[Shift(SHIFT).source]["state"]), f"{NAME} {task.label} {coupling} seed {seed}"))
    return out


def summarise(rows: list[dict], settings: Settings) -> dict:
    ok = [r for r in rows if not is_error(r)]
    groups: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for r in ok:
        groups[(r["label"], r["coupling"])].append(r)
    summary = []
    for (label, coupling), rs in groups.items():
        rs.sort(key=lambda r: r["seed"])
        entry = {"label": label, "coupling": coupling, "seeds": len(rs)}
        for m in ("w2", "w2_floor", "nfe", "path_length", "straightness", "kinetic_energy", "mode_coverage",
                  "steps_per_second", "ot_seconds_per_batch"):
            entry[m] = summarize([r.get(m) for r in rs]).to_dict()
        for k in FEW:
            entry[f"w2_euler{k}"] = summarize([r["w2_by_steps"][k] for r in rs]).to_dict()
        summary.append(entry)
    verdicts = []
    # The few-step claim: after GFT with OT, quality at few steps beats standard fine-tuning with OT.
    gft_ot = sorted(groups.get((f"gft {SCHEDULES[0]}", "ot"), []), key=lambda r: r["seed"])
    std_ot = sorted(groups.get(("standard", "ot"), []), key=lambda r: r["seed"])
    gft_ind = sorted(groups.get((f"gft {SCHEDULES[0]}", "independent"), []), key=lambda r: r["seed"])
    for k in FEW:
        if gft_ot and std_ot:
            verdicts.append({"comparison": "gft+ot vs standard+ot", "metric": f"w2_euler{k}",
                             "verdict": verdict([r["w2_by_steps"][k] for r in gft_ot], [r["w2_by_steps"][k] for r in std_ot])})
        if gft_ot and gft_ind:
            verdicts.append({"comparison": "gft+ot vs gft+independent", "metric": f"w2_euler{k}",
                             "verdict": verdict([r["w2_by_steps"][k] for r in gft_ot], [r["w2_by_steps"][k] for r in gft_ind])})
    for m in ("w2", "straightness", "path_length"):
        if gft_ot and std_ot:
            verdicts.append({"comparison": "gft+ot vs standard+ot", "metric": m,
                             "verdict": verdict([r[m] for r in gft_ot], [r[m] for r in std_ot])})
    return {"shift": SHIFT, "schedule": SCHEDULES[0], "sinkhorn_reg": settings.sinkhorn_reg,
            "summary": summary, "verdicts": verdicts}
