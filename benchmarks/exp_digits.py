"""Digits experiments (8x8 images through ``gft.tasks.digits``): the 0-4 -> 5-9 shift (stability and quality, by
Frechet distance in classifier features) and limited data (memorisation and class diversity).

They run only when ``gft.tasks.digits`` offers the API below; otherwise the suite records why they were skipped.
"""

from __future__ import annotations

import inspect
from collections import defaultdict
from dataclasses import asdict, dataclass

import numpy as np
import torch

from benchmarks.finetune2d import THRESHOLD_FACTOR
from benchmarks.measures import summarize, verdict
from benchmarks.parallel import Job, is_error
from benchmarks.settings import SCHEDULES, Settings
from gft.core.models import ModelConfig, build_model, build_seeded
from gft.core.training import TrainConfig, Trainer
from gft.evaluation.metrics import stability, steps_to_threshold

NAME = "digits"
SOURCE_SPEC = "digits:0-4"
TARGET_SPEC = "digits:5-9"
SOLVER = "euler"  # 100 Euler steps for the final FD: bounded cost; dopri5 on the convnet is far slower on CPU
API = ("target_sets", "model_config", "evaluate_images", "training_eval_fn")
SCENARIOS = ("shift", "limited")
METHODS = {"shift": (("gft", SCHEDULES[0]), ("standard", "constant:0"), ("scratch", "constant:0")),
           "limited": (("gft", SCHEDULES[0]), ("standard", "constant:0"))}


def unavailable_reason() -> str | None:
    """None when gft.tasks.digits offers the API these experiments use, else why not."""
    try:
        from gft.tasks import digits as images
    except Exception as exc:  # missing module or a broken import: skip with the reason
        return f"gft.tasks.digits is not importable ({type(exc).__name__}: {exc})"
    missing = [name for name in API if not callable(getattr(images, name, None))]
    if missing:
        return f"gft.tasks.digits lacks {', '.join(missing)}"
    return None


def _model_config() -> ModelConfig:
    from gft.tasks import digits as images

    return images.model_config()  # the convnet users get by default


def pretrain_digits(steps: int, batch: int, seed: int) -> dict:
    from gft.tasks import digits as images

    train, _ = images.target_sets(SOURCE_SPEC, None, seed)
    config = _model_config()
    model = build_seeded(config, seed)
    trainer = Trainer(model, train, TrainConfig(method="pretrain", steps=steps, batch=batch, seed=seed, eval_every=0,
                                                callback_every=steps))
    try:
        result = trainer.run()
    finally:
        trainer.close()
    state = {k: v.detach().cpu().numpy().copy() for k, v in trainer.model.state_dict().items()}
    return {"source": SOURCE_SPEC, "config": config.to_dict(), "state": state, "seconds": result.train_seconds}


@dataclass(frozen=True)
class DigitsTask:
    scenario: str
    method: str
    schedule: str
    seed: int
    steps: int
    evals: int
    eval_n: int
    limit: int | None
    batch: int

    @property
    def label(self) -> str:
        return f"gft {self.schedule}" if self.method == "gft" else self.method


def run_digits(task: DigitsTask, pretrained: dict) -> dict:
    from gft.tasks import digits as images

    config = ModelConfig.from_dict(pretrained["config"])
    base = build_model(config)
    base.load_state_dict({k: torch.from_numpy(v) for k, v in pretrained["state"].items()})
    train, held_out = images.target_sets(TARGET_SPEC, task.limit, task.seed)
    every = task.steps // task.evals
    tc = TrainConfig(method=task.method, steps=task.steps, batch=task.batch, seed=task.seed, schedule=task.schedule,
                     eval_every=every, callback_every=every)
    trainer = Trainer(build_model(config), train, tc, base, eval_target=held_out,
                      eval_fn=images.training_eval_fn(TARGET_SPEC, task.seed))
    try:
        result = trainer.run(callback=lambda snap: None)
    finally:
        trainer.close()
    options = {"solver": SOLVER} if "solver" in inspect.signature(images.evaluate_images).parameters else {}
    metrics = images.evaluate_images(trainer.model.eval(), TARGET_SPEC, n=task.eval_n, seed=task.seed, limit=task.limit,
                                     **options)
    rows = [h for h in result.history if "w2" in h]
    steps, fd = [h["step"] for h in rows], [h["w2"] for h in rows]  # the trainer files eval_fn values under "w2"
    floor = metrics.get("fd_floor")
    st = stability(fd) if len(fd) >= 3 and np.isfinite(fd).all() else None
    keep = {k: metrics.get(k) for k in ("fd", "fd_floor", "class_entropy", "diversity", "nn_distance_ratio", "fd_by_steps",
                                        "class_fractions", "solver", "nfe")}
    return {**asdict(task), "label": task.label, "train_size": len(train), "curve_steps": steps, "curve_fd": fd,
            "steps_to_threshold": steps_to_threshold(steps, fd, THRESHOLD_FACTOR * floor) if floor else None,
            "spearman": st.spearman if st else None, "diff_variance": st.diff_variance if st else None,
            "largest_rise": st.largest_rise if st else None, "steps_per_second": result.steps_per_second, **keep}


def jobs(settings: Settings, pretrained: dict) -> list[Job]:
    out = []
    for scenario in SCENARIOS:
        limit = settings.digits_limit if scenario == "limited" else None
        for method, schedule in METHODS[scenario]:
            for seed in range(settings.digits_seeds):
                task = DigitsTask(scenario, method, schedule, seed, settings.digits_steps, settings.digits_evals,
                                  settings.digits_eval_n, limit, settings.digits_batch)
                out.append(Job(run_digits, (task, pretrained), f"{NAME} {scenario} {task.label} seed {seed}"))
    return out


def summarise(rows: list[dict], settings: Settings) -> dict:
    ok = [r for r in rows if not is_error(r)]
    groups: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for r in ok:
        groups[(r["scenario"], r["label"])].append(r)
    summary, curves = [], []
    for (scenario, label), rs in groups.items():
        rs.sort(key=lambda r: r["seed"])
        summary.append({"scenario": scenario, "label": label, "seeds": len(rs), "train_size": rs[0]["train_size"],
                        **{m: summarize([r.get(m) for r in rs]).to_dict() for m in
                           ("fd", "fd_floor", "class_entropy", "diversity", "nn_distance_ratio", "spearman",
                            "largest_rise", "steps_per_second")},
                        "reached_threshold": f"{sum(r['steps_to_threshold'] is not None for r in rs)}/{len(rs)}"})
        fd = np.array([r["curve_fd"] for r in rs], dtype=np.float64)
        curves.append({"scenario": scenario, "label": label, "steps": rs[0]["curve_steps"],
                       "mean": np.nanmean(fd, axis=0).tolist(),
                       "sd": (np.nanstd(fd, axis=0, ddof=1) if len(rs) > 1 else np.zeros(fd.shape[1])).tolist()})
    verdicts = []
    for scenario in SCENARIOS:
        gft = sorted(groups.get((scenario, f"gft {SCHEDULES[0]}"), []), key=lambda r: r["seed"])
        std = sorted(groups.get((scenario, "standard"), []), key=lambda r: r["seed"])
        if gft and std:
            for metric, lower in (("fd", True), ("largest_rise", True), ("class_entropy", False),
                                  ("nn_distance_ratio", False)):
                verdicts.append({"scenario": scenario, "metric": metric,
                                 "verdict": verdict([r.get(metric) for r in gft], [r.get(metric) for r in std], lower)})
    return {"source": SOURCE_SPEC, "target": TARGET_SPEC, "model": _model_config().to_dict(), "summary": summary,
            "curves": curves, "verdicts": verdicts}
