"""What every flow network is: its config, the base class (``model(x, t)`` is the velocity,
``model.heads(x, t)`` every drift head), the time embedding and the frozen copy used as f_pre."""

from __future__ import annotations

import abc
import copy
import math
from dataclasses import asdict, dataclass

import torch
from torch import nn

MODEL_KINDS = ("mlp", "convnet")


@dataclass(frozen=True)
class ModelConfig:
    """Architecture of a flow model; JSON-able so a checkpoint can rebuild it."""

    kind: str = "mlp"
    data_shape: tuple[int, ...] = (2,)
    width: int = 128
    depth: int = 3
    time_dim: int = 32
    score_head: bool = False
    upsample: int = 1  # convnet only: 2 runs the 8x8 digits at 16x16 inside the network

    def __post_init__(self) -> None:
        if self.kind not in MODEL_KINDS:
            raise ValueError(f"model kind must be one of {MODEL_KINDS}, got {self.kind!r}")
        object.__setattr__(self, "data_shape", tuple(int(d) for d in self.data_shape))
        if not self.data_shape or any(d < 1 for d in self.data_shape):
            raise ValueError(f"data_shape must be non-empty positive sizes, got {self.data_shape}")
        if not 8 <= self.width <= 4096:
            raise ValueError(f"width must be in [8, 4096], got {self.width}")
        if not 1 <= self.depth <= 16:
            raise ValueError(f"depth must be in [1, 16], got {self.depth}")
        if self.time_dim < 2 or self.time_dim % 2:
            raise ValueError(f"time_dim must be an even integer >= 2, got {self.time_dim}")
        if self.upsample not in (1, 2):
            raise ValueError(f"upsample must be 1 or 2, got {self.upsample}")

    def to_dict(self) -> dict:
        d = asdict(self)
        d["data_shape"] = list(self.data_shape)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "ModelConfig":
        return cls(**d)


class SinusoidalTimeEmbedding(nn.Module):
    """Fixed sin/cos features of t in [0, 1] at geometrically spaced frequencies."""

    def __init__(self, dim: int, max_period: float = 1000.0) -> None:
        super().__init__()
        half = dim // 2
        freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float32) / half)
        # t lives in [0, 1]; scale so the slowest feature still varies over the unit interval.
        self.register_buffer("freqs", freqs * max_period, persistent=False)

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        angles = t[:, None].float() * self.freqs[None, :]
        return torch.cat([torch.sin(angles), torch.cos(angles)], dim=1)


class FlowModel(nn.Module, abc.ABC):
    """Base class: subclasses implement ``heads``; ``forward`` returns the velocity head."""

    config: ModelConfig

    @property
    def has_score(self) -> bool:
        return self.config.score_head

    @abc.abstractmethod
    def heads(self, x: torch.Tensor, t: torch.Tensor) -> dict[str, torch.Tensor]:
        """Every drift head at (x, t): ``velocity``, plus ``score`` when the model has one."""

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return self.heads(x, t)["velocity"]


def frozen_copy(model: FlowModel) -> FlowModel:
    """A detached copy in eval mode with gradients off: the pretrained drift f_pre."""
    frozen = copy.deepcopy(model)
    frozen.eval()
    for p in frozen.parameters():
        p.requires_grad_(False)
    return frozen
