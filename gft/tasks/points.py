"""2D point tasks: a registered distribution, a user file (``file:PATH``) or points held in memory."""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch

from gft.constants import HELDOUT_POINTS, HELDOUT_SEED_OFFSET, POINTS_POOL
from gft.core.models import FlowModel, ModelConfig
from gft.data import DataSpec, validate_points
from gft.evaluation.monitors import heldout_w2
from gft.evaluation.points import evaluate_2d
from gft.evaluation.result import Evaluation
from gft.tasks.task import Task, subset

DEFAULT_WIDTH = 128
DEFAULT_DEPTH = 3


@dataclass(frozen=True)
class PointsTask(Task):
    """A 2D target. With ``points`` (an upload or a drawing) those points are the pool and the reference."""

    data: str
    points: np.ndarray | None = field(default=None, repr=False, compare=False)
    reference_seed: int | None = None  # held-out draws of this seed for every run (one yardstick for a comparison)
    kind = "points"
    metric = "w2"
    default_batch = 256
    data_shape = (2,)

    def __post_init__(self) -> None:
        if self.points is None:
            DataSpec(self.data)  # names the allowed values when unknown
        else:
            object.__setattr__(self, "points", validate_points(self.points, self.data))

    @functools.cached_property  # a file is read once per task, not once per pool, held-out set and metric
    def _fixed(self) -> torch.Tensor | None:
        """The whole set when the law is known only through samples (a file or in-memory points)."""
        if self.points is not None:
            return torch.from_numpy(self.points)
        spec = DataSpec(self.data)
        return spec.points(0, 0) if spec.is_file else None

    def model_config(self, width: int | None = None, depth: int | None = None, score_head: bool = False, upsample: int = 1) -> ModelConfig:
        if upsample != 1:
            raise ValueError("upsample applies to image models only")
        return ModelConfig(width=width or DEFAULT_WIDTH, depth=depth or DEFAULT_DEPTH, score_head=score_head)

    def pool(self, seed: int, limit: int | None = None) -> torch.Tensor:
        fixed = self._fixed
        pool = fixed if fixed is not None else DataSpec(self.data).points(POINTS_POOL, seed)
        return subset(pool, limit, seed)

    def held_out(self, seed: int) -> torch.Tensor:
        """Fresh draws of a registered law; a sample-only law is compared with its own samples."""
        fixed = self._fixed
        if fixed is not None:
            return fixed
        seed = seed if self.reference_seed is None else self.reference_seed
        return DataSpec(self.data).points(HELDOUT_POINTS, seed + HELDOUT_SEED_OFFSET)

    def curve_metric(self, seed: int, n: int) -> Callable[[FlowModel], float]:
        return heldout_w2(self.held_out(seed), n, seed)

    def evaluate(
        self, model: FlowModel, n: int = 2000, seed: int = 0, device: str | torch.device = "cpu",
        limit: int | None = None, train_seed: int | None = None,
    ) -> Evaluation:  # fmt: skip
        if self.points is not None:
            raise ValueError("in-memory points have no evaluation of their own; save them to a file and use file:PATH")
        return evaluate_2d(model, DataSpec(self.data), n=n, seed=seed, device=device)
