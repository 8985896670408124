"""One parsed ``--data`` value: a registered 2D name, ``file:PATH`` or ``digits:...``."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from gft.data.files import load_points_file
from gft.data.toys import DISTRIBUTIONS, sample_distribution


@dataclass(frozen=True)
class DataSpec:
    """A parsed ``--data`` value: a registered name or ``file:PATH``."""

    text: str

    def __post_init__(self) -> None:
        if not self.is_file and not self.is_image and self.text not in DISTRIBUTIONS:
            raise ValueError(
                f"unknown data {self.text!r}; choose one of {sorted(DISTRIBUTIONS)}, file:PATH, digits:CLASSES or images:PATH"
            )

    @property
    def is_file(self) -> bool:
        return self.text.startswith("file:")

    @property
    def is_image(self) -> bool:
        return self.text.startswith("digits:")

    def points(self, n: int, seed: int) -> torch.Tensor:
        """The 2D training pool: ``n`` fresh points of a registered name, or the whole file."""
        if self.is_file:
            return torch.from_numpy(load_points_file(self.text[len("file:"):]))
        return sample_distribution(self.text, n, seed)
