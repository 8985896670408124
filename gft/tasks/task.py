"""The task interface: what a run needs to know about its data, whatever the kind.

A :class:`Task` gives the training pool and the held-out set, the default model and batch, the metric
a training curve tracks and the full evaluation. Points (2D) and images (digits) implement it, so the
CLI, the app and the benchmarks never branch on the kind of data. User image sets (``images:``) are
images too: ``kind`` says which models a task can share, ``data_shape`` which of those fit.
"""

from __future__ import annotations

import abc
from typing import Callable

import torch

from gft.core.models import FlowModel, ModelConfig
from gft.evaluation.result import Evaluation


class Task(abc.ABC):
    """One target (or source) distribution as a run sees it."""

    data: str  # what a checkpoint records as its data (the ``--data`` text)
    kind: str  # "points" or "images": two tasks can share a model only when their kinds match
    metric: str  # the distance a training curve tracks: "w2" or "fd"
    default_batch: int
    data_shape: tuple[int, ...]

    @abc.abstractmethod
    def model_config(self, width: int | None = None, depth: int | None = None, score_head: bool = False, upsample: int = 1) -> ModelConfig:
        """The default architecture for this data; ``None`` keeps a default size."""

    @abc.abstractmethod
    def pool(self, seed: int, limit: int | None = None) -> torch.Tensor:
        """Training samples in model space; ``limit`` keeps that many, chosen by ``seed``."""

    @abc.abstractmethod
    def held_out(self, seed: int) -> torch.Tensor:
        """Samples never trained on, in model space: the reference of training curves."""

    @abc.abstractmethod
    def curve_metric(self, seed: int, n: int) -> Callable[[FlowModel], float]:
        """A cheap distance to the held-out set for training curves (compare it only with itself)."""

    @abc.abstractmethod
    def evaluate(
        self, model: FlowModel, n: int = 2000, seed: int = 0, device: str | torch.device = "cpu",
        limit: int | None = None, train_seed: int | None = None,
    ) -> Evaluation:  # fmt: skip
        """The full evaluation from ``n`` noise draws of ``seed``; ``limit``/``train_seed`` name the training subset seen."""

    def to_output(self, x: torch.Tensor) -> torch.Tensor:
        """Model space to the user's space (identity for points)."""
        return x

    def output_info(self) -> dict:
        """What :meth:`to_output` needs to know about the data, JSON-able: a checkpoint records it (in
        ``extra["output"]``) so that a task rebuilt with it (``task_for(data, output=...)``) writes
        samples the same way without the data at hand. Empty when the spec alone says it."""
        return {}

    def check_model(self, config: ModelConfig, role: str = "the model") -> None:
        """Refuse a model whose samples do not have this task's shape."""
        if tuple(config.data_shape) != tuple(self.data_shape):
            raise ValueError(f"{role} makes samples of shape {tuple(config.data_shape)}; {self.data!r} needs {tuple(self.data_shape)}")


def subset(pool: torch.Tensor, limit: int | None, seed: int) -> torch.Tensor:
    """``limit`` rows of ``pool`` chosen by ``seed`` (all of it for None)."""
    if limit is None:
        return pool
    if not isinstance(limit, int) or limit < 2:
        raise ValueError(f"limit must be an integer >= 2, got {limit!r}")
    if limit > len(pool):
        raise ValueError(f"limit {limit} exceeds the {len(pool)} available samples")
    return pool[torch.randperm(len(pool), generator=torch.Generator().manual_seed(seed))[:limit]]
