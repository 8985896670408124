"""User image-set tasks (``images:PATH[#X[,Y]][:CLASSES]``, or an app upload held in memory).

Model space: (N, C, H, W) float32 in [-1, 1], as :mod:`gft.data.image_files` scales the file; samples go
back to the file's layout and range through the recorded :class:`ImageScaling`. A task rebuilt from a
checkpoint gets that record (``output``), so ``sample`` needs no file on disk.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import torch

from gft.core.device import on_device
from gft.core.models import FlowModel, ModelConfig
from gft.data.image_files import ImageFileSpec, ImagePart, ImageScaling, ImageSet, image_parts, load_image_set, parse_image_spec
from gft.evaluation.image_features import FeatureSpace, feature_space
from gft.evaluation.image_files import evaluate_image_file
from gft.evaluation.images import fd_curve
from gft.evaluation.result import Evaluation
from gft.tasks.task import Task, subset


def default_model_size(shape: tuple[int, int, int]) -> tuple[int, int]:
    """(width, depth) of the convnet for (C, H, W) images: channels at full resolution, blocks per level.

    Up to 16x16 the digits' size (16, 1: a few ms a step on a CPU); up to 32x32 width 32, with two blocks
    per level for colour (three times the values to model); beyond, width 48 and two blocks. Wider is
    better on a GPU; on a CPU pass a smaller ``--width`` for quick runs.
    """
    c, h, w = shape
    side = max(h, w)
    if side <= 16:
        return 16, 1
    if side <= 32:
        return 32, 2 if c == 3 else 1
    return 48, 2


@dataclass(frozen=True)
class ImageFileTask(Task):
    """An ``images:`` spec: the train part (a seeded subset with ``limit``) and the held-out part of its classes."""

    data: str
    upload: ImageSet | None = field(default=None, repr=False, compare=False)  # arrays of an app upload
    output: dict | None = field(default=None, repr=False, compare=False)  # a checkpoint's output_info()
    kind = "images"
    metric = "fd"
    default_batch = 128

    def __post_init__(self) -> None:
        parse_image_spec(self.data)  # names what is wrong with the spec, without reading the file
        if self.output is not None:
            self._recorded()

    def _recorded(self) -> ImageScaling:
        if not isinstance(self.output, dict) or not isinstance(self.output.get("scaling"), dict):
            raise ValueError(f"{self.data}: the checkpoint's output record holds no image scaling")
        return ImageScaling.from_dict(self.output["scaling"])

    @property
    def spec(self) -> ImageFileSpec:
        return parse_image_spec(self.data)

    @property
    def images(self) -> ImageSet:
        return self.upload if self.upload is not None else load_image_set(self.spec)

    @property
    def scaling(self) -> ImageScaling:
        return self._recorded() if self.output is not None else self.images.scaling

    @property
    def data_shape(self) -> tuple[int, int, int]:
        return self.scaling.shape

    def parts(self) -> tuple[ImagePart, ImagePart]:
        """(train, held-out) images of the spec's classes."""
        return image_parts(self.images, self.spec)

    def feature_space(self) -> FeatureSpace:
        """The FD features: a classifier of every class of the file's train part, or random features."""
        everything = ImageFileSpec(self.spec.path, self.spec.images_key, self.spec.labels_key)
        train, _ = image_parts(self.images, everything)
        return feature_space(train.images, train.labels)

    def model_config(self, width: int | None = None, depth: int | None = None, score_head: bool = False, upsample: int = 1) -> ModelConfig:
        """The convnet sized by :func:`default_model_size`; ``width``/``depth`` override it."""
        w, d = default_model_size(self.data_shape)
        return ModelConfig(kind="convnet", data_shape=self.data_shape, width=width or w, depth=depth or d, score_head=score_head, upsample=upsample)

    def pool(self, seed: int, limit: int | None = None) -> torch.Tensor:
        return subset(self.parts()[0].images, limit, seed)

    def held_out(self, seed: int) -> torch.Tensor:
        return self.parts()[1].images

    def curve_metric(self, seed: int, n: int) -> Callable[[FlowModel], float]:
        space = self.feature_space()
        return fd_curve(space.features, space.features(self.held_out(seed)), self.data_shape, seed)

    def evaluate(
        self, model: FlowModel, n: int = 2000, seed: int = 0, device: str | torch.device = "cpu",
        limit: int | None = None, train_seed: int | None = None,
    ) -> Evaluation:  # fmt: skip
        self.check_model(model.config)
        train, held = self.parts()
        seen = ImagePart(subset(train.images, limit, seed if train_seed is None else train_seed), None)
        model = on_device(model, device)
        return evaluate_image_file(model, self.feature_space(), seen, train, held, self.spec.classes, n=n, seed=seed)

    def to_output(self, x: torch.Tensor) -> torch.Tensor:
        return self.scaling.to_file(x)

    def output_info(self) -> dict:
        return {"scaling": self.scaling.to_dict()}
