"""The one run factory: a task, a training config and what to watch become a :class:`Trainer`.

The CLI, every app page and the benchmarks build their runs here, so a run means the same thing
everywhere: which weights it starts from (by method), which data it trains on (by seed and limit),
and which measurements its history carries.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from gft.constants import MAX_MEASURED_POINTS, VALIDATION_SEED_OFFSET
from gft.core.distributed import Shard
from gft.core.models import FlowModel, ModelConfig
from gft.core.training import Hook, TrainConfig, Trainer
from gft.data.image_files import PREFIX as IMAGES_PREFIX
from gft.evaluation.monitors import BestWeights, trajectories
from gft.tasks.digits import DigitsTask
from gft.tasks.image_files import ImageFileTask
from gft.tasks.points import PointsTask
from gft.tasks.task import Task

VALIDATION = "val_energy"  # the history column of the validation energy


def task_for(data: str, points: np.ndarray | None = None, output: dict | None = None) -> Task:
    """The task of a ``--data`` value (``digits:...`` and ``images:...`` are images, anything else 2D points).

    ``output`` is a checkpoint's ``extra["output"]`` (:meth:`Task.output_info` at training time): the
    task then writes samples as it did then, without reading the data again.
    """
    if not isinstance(data, str) or not data:
        raise ValueError(f"data must be a non-empty string, got {data!r}")
    if data.startswith(IMAGES_PREFIX):
        if points is not None:
            raise ValueError("in-memory points make a 2D task, not an image one")
        return ImageFileTask(data, output=output or None)
    if data.startswith("digits:"):
        if points is not None:
            raise ValueError("in-memory points make a 2D task, not a digits one")
        return DigitsTask(data)
    return PointsTask(data, points)


@dataclass(frozen=True)
class Monitor:
    """What a run records besides its loss: a held-out curve and trajectories for animations."""

    eval_every: int = 0  # the task's curve metric every this many steps (and at both ends); 0 = never
    eval_points: int = 1000  # samples behind each curve point (2D; the image FD uses its own size)
    particles: int = 0  # fixed-noise particles whose trajectories each snapshot carries; 0 = none
    trajectory_steps: int = 20  # Euler steps of those trajectories
    trajectory_every: int = 0  # 0 = at every callback (TrainConfig.callback_every)
    val_fraction: float = 0.0  # share of the training samples held out for validation (checked every eval_every)

    def __post_init__(self) -> None:
        for name in ("eval_every", "particles", "trajectory_every"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 0:
                raise ValueError(f"{name} must be an integer >= 0, got {value!r}")
        if not isinstance(self.eval_points, int) or not 2 <= self.eval_points <= MAX_MEASURED_POINTS:
            raise ValueError(f"eval_points must be an integer in [2, {MAX_MEASURED_POINTS}], got {self.eval_points!r}")
        if not isinstance(self.particles, int) or self.particles > MAX_MEASURED_POINTS:
            raise ValueError(f"particles must be an integer in [0, {MAX_MEASURED_POINTS}], got {self.particles!r}")
        if not isinstance(self.trajectory_steps, int) or not 1 <= self.trajectory_steps <= 1000:
            raise ValueError(f"trajectory_steps must be an integer in [1, 1000], got {self.trajectory_steps!r}")
        if not 0 <= self.val_fraction < 1:
            raise ValueError(f"val_fraction must be in [0, 1), got {self.val_fraction}")
        if self.val_fraction and not self.eval_every:
            raise ValueError("a validation split needs eval_every > 0 (how often the validation energy is measured)")

    def hooks(self, task: Task, config: TrainConfig, validation: torch.Tensor | None = None) -> list[Hook]:
        hooks = []
        if validation is not None:
            hooks.append(Hook(VALIDATION, self.eval_every, BestWeights(validation, min(self.eval_points, 2000), config.seed)))
        if self.eval_every:
            hooks.append(Hook(task.metric, self.eval_every, task.curve_metric(config.seed, self.eval_points)))
        if self.particles:
            follow = trajectories(self.particles, task.data_shape, config.seed, self.trajectory_steps)
            hooks.append(Hook("trajectory", self.trajectory_every or config.callback_every, follow))
        return hooks


def make_trainer(
    task: Task,
    config: TrainConfig,
    base: FlowModel | None = None,
    model_config: ModelConfig | None = None,
    limit: int | None = None,
    monitor: Monitor = Monitor(),
    shard: Shard | None = None,
) -> Trainer:
    """A trainer for ``config.method`` on ``task``'s pool (seeded by ``config.seed``, ``limit`` samples).

    ``pretrain`` builds ``model_config`` (default: the task's) from the seed; ``gft`` and ``standard``
    fine-tune a copy of ``base``; ``scratch`` trains fresh weights of ``base``'s architecture. The
    caller's ``base`` is never changed. ``shard`` makes it one rank of a data-parallel run
    (:mod:`gft.core.distributed`; ``config.batch`` is then the batch of each rank).
    """
    if config.method == "pretrain":
        if base is not None:
            raise ValueError("pretraining starts from fresh weights; pass model_config, not base")
        init = model_config or task.model_config()
        task.check_model(init)
    else:
        if base is None:
            raise ValueError(f"method {config.method!r} needs the pretrained model (base)")
        if model_config is not None and model_config != base.config:
            raise ValueError("fine-tuning keeps the architecture of base; do not pass a different model_config")
        init = None
        task.check_model(base.config, "the base model")
    pool, validation = split_validation(task.pool(config.seed, limit), monitor.val_fraction, config.seed)
    return Trainer(pool, config, init=init, pretrained=base, hooks=monitor.hooks(task, config, validation), shard=shard)


def split_validation(pool: torch.Tensor, fraction: float, seed: int) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``(training, validation)``: a seeded ``fraction`` of the pool held out (at least 2 samples each side)."""
    if not fraction:
        return pool, None
    n_val = max(2, round(fraction * len(pool)))
    if len(pool) - n_val < 2:
        raise ValueError(f"val_fraction {fraction:g} leaves fewer than 2 of the {len(pool)} training samples")
    order = torch.randperm(len(pool), generator=torch.Generator().manual_seed(seed + VALIDATION_SEED_OFFSET))
    return pool[order[n_val:]], pool[order[:n_val]]


def best_weights(trainer: Trainer) -> BestWeights | None:
    """The validation keeper of a run made with ``Monitor(val_fraction > 0)``, else None."""
    return next((h.fn for h in trainer.hooks if h.name == VALIDATION), None)


def best_point(history: list[dict]) -> dict | None:
    """The history row with the lowest validation energy (its step, tau and lambda), or None."""
    rows = [r for r in history if r.get(VALIDATION) is not None]
    return min(rows, key=lambda r: r[VALIDATION]) if rows else None
