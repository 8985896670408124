"""Digit image tasks (``digits:CLASSES[+TRANSFORM...]``): scikit-learn's 8x8 digits, split once into
train and held-out images per class.

Model space: pixels ``x`` in [0, 16] become ``x / 8 - 1`` in [-1, 1], shape (N, 1, 8, 8); samples go
back through :func:`gft.data.digits.to_pixels` (clamped, channel dropped). Couplings, the GFT
objective and the samplers are the 2D ones: they work on flattened samples of any shape.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

from gft.core.device import on_device
from gft.core.models import FlowModel, ModelConfig
from gft.data.digits import DATA_SHAPE, digit_set, parse_digits_spec, to_model_scale, to_pixels
from gft.evaluation.images import evaluate_images, training_fd
from gft.evaluation.result import Evaluation
from gft.tasks.task import Task

DEFAULT_WIDTH = 16  # channels at full resolution (2x that at 4x4); 32 fits better at 1/3 of the speed
DEFAULT_DEPTH = 1  # residual blocks per resolution level


@dataclass(frozen=True)
class DigitsTask(Task):
    """A ``digits:`` spec: its training images (a seeded, class-balanced subset with ``limit``) and held-out images."""

    data: str
    kind = "images"
    metric = "fd"
    default_batch = 128
    data_shape = DATA_SHAPE

    def __post_init__(self) -> None:
        parse_digits_spec(self.data)

    def model_config(self, width: int | None = None, depth: int | None = None, score_head: bool = False, upsample: int = 1) -> ModelConfig:
        """The digits convnet; ``width`` is its channel count at 8x8 (16x16 with ``upsample=2``)."""
        return ModelConfig(
            kind="convnet",
            data_shape=DATA_SHAPE,
            width=DEFAULT_WIDTH if width is None else width,
            depth=DEFAULT_DEPTH if depth is None else depth,
            score_head=score_head,
            upsample=upsample,
        )

    def pool(self, seed: int, limit: int | None = None) -> torch.Tensor:
        spec = parse_digits_spec(self.data)
        if limit is not None:
            available = len(digit_set(spec, "train"))
            if limit > available:
                raise ValueError(f"limit {limit} exceeds the {available} training images of {self.data}")
        return to_model_scale(digit_set(spec, "train", limit=limit, seed=seed).pixels)

    def held_out(self, seed: int) -> torch.Tensor:
        return to_model_scale(digit_set(parse_digits_spec(self.data), "heldout").pixels)

    def curve_metric(self, seed: int, n: int) -> Callable[[FlowModel], float]:
        return training_fd(self.data, seed)

    def evaluate(
        self, model: FlowModel, n: int = 2000, seed: int = 0, device: str | torch.device = "cpu",
        limit: int | None = None, train_seed: int | None = None,
    ) -> Evaluation:  # fmt: skip
        return evaluate_images(on_device(model, device), self.data, n=n, seed=seed, limit=limit, train_seed=train_seed)

    def to_output(self, x: torch.Tensor) -> torch.Tensor:
        return to_pixels(x)
