"""Digits (8x8 images, :class:`gft.tasks.digits.DigitsTask`): a convnet pretrained on the digits 0-4,
fine-tuned toward 5-9 by GFT and by standard fine-tuning at the same number of steps (and, secondary, by
GFT stopped at tau 0.5 and by L2-SP).

Quality is the Frechet distance in the shipped classifier's features between ``digits_eval_n`` samples
(100 Euler steps) and the held-out 5-9 images, with its null band: the FD of real training images (as
many as the samples, at most 80% of the 627 there are) to the same held-out set.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch

from benchmarks.common import run_config
from benchmarks.parallel import Job, Runner, is_error
from benchmarks.settings import Settings
from benchmarks.stats import aligned, summarize
from benchmarks.store import fingerprint
from gft.core.models import ModelConfig, build_model
from gft.core.training import TrainConfig, TrainingDiverged
from gft.evaluation.images import evaluate_images
from gft.tasks.digits import DigitsTask
from gft.tasks.runs import make_trainer

NAME = "digits"
SOURCE_SPEC = "digits:0-4"
TARGET_SPEC = "digits:5-9"
METHODS = ("standard", "gft")  # the primary comparison
EXTRAS = ("gft-stop", "l2sp")  # the stop temperature and weight anchoring, on images too (secondary)


def pretrain_digits(steps: int, batch: int, seed: int) -> dict:
    source = DigitsTask(SOURCE_SPEC)
    config = source.model_config()  # the convnet users get by default
    trainer = make_trainer(source, TrainConfig(method="pretrain", steps=steps, batch=batch, seed=seed, callback_every=steps),
                           model_config=config)
    try:
        result = trainer.run()
    finally:
        trainer.close()
    state = {k: v.detach().cpu().numpy().copy() for k, v in trainer.model.state_dict().items()}
    return {"seed": seed, "config": config.to_dict(), "state": state, "seconds": result.train_seconds}


@dataclass(frozen=True)
class DigitsRun:
    variant: str
    seed: int
    steps: int
    batch: int
    eval_n: int


def run_digits(task: DigitsRun, pretrained: dict) -> dict:
    base = build_model(ModelConfig.from_dict(pretrained["config"]))
    base.load_state_dict({k: torch.from_numpy(v) for k, v in pretrained["state"].items()})
    config = run_config(task.variant, task.steps, batch=task.batch, seed=task.seed, callback_every=task.steps)
    trainer = make_trainer(DigitsTask(TARGET_SPEC), config, base=base)
    try:
        result = trainer.run()
    except TrainingDiverged:
        return {**asdict(task), "diverged": True}
    finally:
        trainer.close()
    ev = evaluate_images(trainer.result_model.eval(), TARGET_SPEC, n=task.eval_n, seed=task.seed)
    return {**asdict(task), "diverged": False, "fd": ev.fd, "fd_null": ev.fd_null, "fd_by_steps": ev.fd_by_steps,
            "class_entropy": ev.class_entropy, "nn_distance_ratio": ev.nn_distance_ratio,
            "steps_per_second": result.steps_per_second, "train_seconds": result.train_seconds}


def pretrain_jobs(settings: Settings) -> list[Job]:
    key = fingerprint({"steps": settings.digits_pretrain_steps, "batch": settings.digits_batch})
    return [Job(pretrain_digits, (settings.digits_pretrain_steps, settings.digits_batch, seed), f"pretrain digits seed {seed}",
                f"{NAME}/pretrain/{seed}/{key}") for seed in range(settings.pretrained_seeds)]


def prepare(runner: Runner, settings: Settings) -> tuple[dict[int, dict], list[str]]:
    models, failures = {}, []
    for job, row in zip(pretrain_jobs(settings), runner.map(pretrain_jobs(settings))):
        if is_error(row):
            failures.append(f"{job.tag}: {row['error']}")
        else:
            models[row["seed"]] = row
    return models, failures


def jobs(settings: Settings, pretrained: dict[int, dict]) -> list[Job]:
    key = fingerprint({"steps": settings.digits_pretrain_steps, "batch": settings.digits_batch})
    out = []
    for variant in METHODS + EXTRAS:
        for seed in settings.seed_list:
            r = DigitsRun(variant, seed, settings.digits_steps, settings.digits_batch, settings.digits_eval_n)
            out.append(Job(run_digits, (r, pretrained[settings.pretrained_seed(seed)]), f"{NAME} {variant} seed {seed}",
                           f"{NAME}/{variant}/{seed}/{fingerprint(asdict(r))}/{key}"))
    return out


def _values(rows: list[dict], variant: str, field: str) -> dict:
    return {r["seed"]: (None if r.get("diverged") else r.get(field)) for r in rows if r["variant"] == variant}


def summarise(rows: list[dict], settings: Settings) -> dict:
    nulls = [r["fd_null"] for r in rows if r.get("fd_null")]
    null = {"mean": summarize([n["mean"] for n in nulls]).mean, "sd": summarize([n["sd"] for n in nulls]).mean,
            "n": nulls[0]["n"] if nulls else None, "pairs": nulls[0]["pairs"] if nulls else None}
    table = [{"variant": v, **{f: summarize(_values(rows, v, f).values()).to_dict()
                               for f in ("fd", "class_entropy", "nn_distance_ratio", "steps_per_second")}}
             for v in METHODS + EXTRAS if any(r["variant"] == v for r in rows)]
    comparisons = []
    for field, lower, primary, question in (("fd", True, True, f"FD after {settings.digits_steps} steps"),
                                             ("class_entropy", False, False, "class entropy of the samples (higher: more even)")):
        a, b = aligned(_values(rows, "gft", field), _values(rows, "standard", field))
        comparisons.append({"id": f"digits:{field}", "question": f"{SOURCE_SPEC} -> {TARGET_SPEC}: {question}", "a": "gft",
                            "b": "standard", "metric": field, "lower_is_better": lower, "values_a": a, "values_b": b,
                            "null": null if field == "fd" else None, "primary_candidate": primary})
    for extra in EXTRAS:
        if any(r["variant"] == extra for r in rows):
            a, b = aligned(_values(rows, extra, "fd"), _values(rows, "standard", "fd"))
            comparisons.append({"id": f"digits:fd:{extra}", "question": f"{SOURCE_SPEC} -> {TARGET_SPEC}: FD, {extra} against standard",
                                "a": extra, "b": "standard", "metric": "fd", "lower_is_better": True, "values_a": a,
                                "values_b": b, "null": null, "primary_candidate": False})
    return {"table": table, "comparisons": comparisons, "null": null}
