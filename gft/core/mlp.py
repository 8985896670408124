"""The MLP flow network for 2D points (and any flattened data)."""

from __future__ import annotations

import math

import torch
from torch import nn

from gft.core.flow_model import FlowModel, ModelConfig, SinusoidalTimeEmbedding


class MLPFlow(FlowModel):
    """MLP on flattened x concatenated with a sinusoidal time embedding; SiLU activations."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        dim = math.prod(config.data_shape)
        self.embed = SinusoidalTimeEmbedding(config.time_dim)
        layers: list[nn.Module] = [nn.Linear(dim + config.time_dim, config.width), nn.SiLU()]
        for _ in range(config.depth - 1):
            layers += [nn.Linear(config.width, config.width), nn.SiLU()]
        self.trunk = nn.Sequential(*layers)
        n_heads = 2 if config.score_head else 1
        self.out = nn.Linear(config.width, dim * n_heads)

    def heads(self, x: torch.Tensor, t: torch.Tensor) -> dict[str, torch.Tensor]:
        b = x.shape[0]
        h = self.trunk(torch.cat([x.reshape(b, -1), self.embed(t)], dim=1))
        out = self.out(h)
        if not self.config.score_head:
            return {"velocity": out.view_as(x)}
        v, s = out.chunk(2, dim=1)
        return {"velocity": v.reshape_as(x), "score": s.reshape_as(x)}
