"""The 2D distribution shifts of the benchmarks, including one that no registered name describes.

A shift ``SOURCE->TARGET`` fine-tunes a model pretrained on SOURCE towards TARGET. Targets are
registered gft distributions or transformed copies of them: ``moons_rot40`` (the moons turned by 40
degrees), ``8gaussians_rot20_scale0.8`` (turned, then shrunk about the origin). A transformed copy is
a law related to its source, built here as tensors and handed to the Trainer directly.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import torch

from gft.constants import FLOOR_SEED_OFFSET, HELDOUT_SEED_OFFSET
from gft.core.models import ModelConfig
from gft.data import DISTRIBUTIONS, MODES, sample_distribution
from gft.evaluation.monitors import heldout_w2
from gft.tasks.points import PointsTask
from gft.tasks.task import Task

_ROTATED = re.compile(r"^(?P<base>[a-z0-9]+?)(?:_rot(?P<deg>-?\d+))?(?:_scale(?P<scale>\d+(?:\.\d+)?))?$")

# Seed offsets keep the training pool, the held-out set and the floor's second draw independent (the
# held-out and floor offsets are the library's, so a registered target reads the same draws everywhere).
HELD_OUT_OFFSET = HELDOUT_SEED_OFFSET
FLOOR_OFFSET = FLOOR_SEED_OFFSET
POOL_OFFSET = 100
DEFAULT_SOURCE = "gaussian"  # any registered name: only its default 2D architecture is read


def rotate(points: torch.Tensor, degrees: float) -> torch.Tensor:
    """Rotate 2D points about the origin, counter-clockwise."""
    a = math.radians(degrees)
    rot = torch.tensor([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]], dtype=points.dtype)
    return points @ rot.T


@dataclass(frozen=True)
class Target:
    """A 2D target law known only through a seeded sampler (and its modes, for mixtures)."""

    name: str

    def __post_init__(self) -> None:
        m = _ROTATED.match(self.name)
        base = m.group("base") if m else self.name
        if base not in DISTRIBUTIONS or (m and m.group("scale") is not None and not float(m.group("scale")) > 0):
            raise ValueError(f"unknown benchmark target {self.name!r}: a registered name, NAME_rotDEGREES, "
                             "NAME_scaleFACTOR or NAME_rotDEGREES_scaleFACTOR (factor > 0)")

    @property
    def registered(self) -> bool:
        return self.name in DISTRIBUTIONS

    def sample(self, n: int, seed: int) -> torch.Tensor:
        if self.registered:
            return sample_distribution(self.name, n, seed)
        m = _ROTATED.match(self.name)
        points = rotate(sample_distribution(m.group("base"), n, seed), float(m.group("deg") or 0))
        return points * float(m.group("scale") or 1)

    @property
    def modes(self) -> tuple[torch.Tensor, float] | None:
        return MODES.get(self.name)

    def pool(self, size: int, seed: int, limit: int | None = None, offset: int = POOL_OFFSET) -> torch.Tensor:
        """The training set of one seed: ``size`` draws, or a ``limit``-point subset of them."""
        pts = self.sample(size, seed + offset)
        if limit is None:
            return pts
        if limit > len(pts):
            raise ValueError(f"limit {limit} exceeds the pool of {len(pts)} points")
        return pts[:limit]  # the draws are i.i.d., so the first ``limit`` are a uniform subset

    def held_out(self, n: int, seed: int) -> torch.Tensor:
        return self.sample(n, seed + HELD_OUT_OFFSET)

    def floor_draw(self, n: int, seed: int) -> torch.Tensor:
        return self.sample(n, seed + FLOOR_OFFSET)


@dataclass(frozen=True)
class Shift:
    """``source->target``: pretrained on ``source`` (a registered name), fine-tuned towards ``target``."""

    text: str

    def __post_init__(self) -> None:
        if self.text.count("->") != 1:
            raise ValueError(f"a shift is written SOURCE->TARGET, got {self.text!r}")
        if self.source not in DISTRIBUTIONS:
            raise ValueError(f"shift source must be a registered distribution, got {self.source!r}")
        Target(self.target_name)

    @property
    def source(self) -> str:
        return self.text.split("->")[0]

    @property
    def target_name(self) -> str:
        return self.text.split("->")[1]

    @property
    def target(self) -> Target:
        return Target(self.target_name)


@dataclass(frozen=True)
class TargetTask(Task):
    """A benchmark target as a gft task, so its runs are built by :func:`gft.tasks.runs.make_trainer` like
    everywhere else: ``pool_size`` seeded training draws and ``eval_points`` held-out draws."""

    target: Target
    pool_size: int
    eval_points: int
    pool_offset: int = POOL_OFFSET  # pretraining draws its pool at the run seed itself (offset 0)
    kind = "points"
    metric = "w2"
    default_batch = 256
    data_shape = (2,)

    @property
    def data(self) -> str:
        return self.target.name

    def model_config(self, width: int | None = None, depth: int | None = None, score_head: bool = False, upsample: int = 1) -> ModelConfig:
        return PointsTask(DEFAULT_SOURCE).model_config(width, depth, score_head, upsample)

    def pool(self, seed: int, limit: int | None = None) -> torch.Tensor:
        return self.target.pool(self.pool_size, seed, limit, self.pool_offset)

    def held_out(self, seed: int) -> torch.Tensor:
        return self.target.held_out(self.eval_points, seed)

    def curve_metric(self, seed: int, n: int):
        return heldout_w2(self.held_out(seed), n, seed)

    def evaluate(self, model, n=2000, seed=0, device="cpu", limit=None, train_seed=None):
        if not self.target.registered:
            raise ValueError(f"{self.data!r} is not a registered distribution; the benchmarks measure it themselves")
        return PointsTask(self.data).evaluate(model, n, seed, device)
