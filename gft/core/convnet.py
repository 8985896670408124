"""A small time-conditioned U-Net for 8x8 digits: ``ModelConfig(kind="convnet")``.

With ``C = config.width`` channels, ``D = config.depth`` residual blocks per level and ``R`` = 8 (16
when ``upsample=2``: nearest upsampling on the way in, 2x2 averaging of the heads on the way out)::

    in conv 1 -> C           @ R    then D ResBlock(C)      -> skip
    stride-2 conv C -> 2C    @ R/2  then D ResBlock(2C)
    conv 2C -> C             @ R/2, nearest x2, + skip, then D ResBlock(C)
    GroupNorm, SiLU, conv C -> heads (velocity, and score with a score head)

Time enters every residual block as a per-channel shift (an embedding MLP shared by all blocks). The
output convolution starts at zero, so a fresh model predicts zero velocity (and score) and its first
steps learn the data rather than undo a random field. On CPU the 3x3 convolutions dominate the cost:
about ``(6 D + 1) C^2 * 9 * R^2`` multiply-adds per image (4 D of those units at full resolution).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from gft.core.flow_model import FlowModel, ModelConfig, SinusoidalTimeEmbedding

IMAGE_SHAPE = (1, 8, 8)


def _groups(channels: int) -> int:
    # GroupNorm needs channels divisible by the group count; 8 groups when possible.
    for g in (8, 4, 2):
        if channels % g == 0:
            return g
    return 1


class ResBlock(nn.Module):
    """Pre-norm residual block; the time embedding shifts the features between the two convs."""

    def __init__(self, channels: int, emb_dim: int) -> None:
        super().__init__()
        self.norm1 = nn.GroupNorm(_groups(channels), channels)
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1)
        self.time = nn.Linear(emb_dim, channels)
        self.norm2 = nn.GroupNorm(_groups(channels), channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        h = h + self.time(emb)[:, :, None, None]
        h = self.conv2(F.silu(self.norm2(h)))
        return x + h


class ConvFlow(FlowModel):
    """Two-level U-Net with time conditioning; data shape (1, 8, 8)."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        if config.data_shape != IMAGE_SHAPE:
            raise ValueError(f"data_shape must be {IMAGE_SHAPE} for the convnet, got {config.data_shape}")
        if config.depth > 4:
            raise ValueError(f"depth must be in [1, 4] for the convnet (residual blocks per level), got {config.depth}")
        self.config = config
        c, emb = config.width, 2 * config.width
        self.embed = nn.Sequential(
            SinusoidalTimeEmbedding(config.time_dim), nn.Linear(config.time_dim, emb), nn.SiLU(), nn.Linear(emb, emb)
        )
        self.inp = nn.Conv2d(IMAGE_SHAPE[0], c, 3, padding=1)
        self.enc = nn.ModuleList(ResBlock(c, emb) for _ in range(config.depth))
        self.down = nn.Conv2d(c, 2 * c, 3, stride=2, padding=1)
        self.mid = nn.ModuleList(ResBlock(2 * c, emb) for _ in range(config.depth))
        self.up = nn.Conv2d(2 * c, c, 3, padding=1)
        self.dec = nn.ModuleList(ResBlock(c, emb) for _ in range(config.depth))
        self.out_norm = nn.GroupNorm(_groups(c), c)
        n_heads = 2 if config.score_head else 1
        self.out = nn.Conv2d(c, IMAGE_SHAPE[0] * n_heads, 3, padding=1)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def heads(self, x: torch.Tensor, t: torch.Tensor) -> dict[str, torch.Tensor]:
        emb = self.embed(t)
        up = self.config.upsample
        h = F.interpolate(x, scale_factor=up, mode="nearest") if up > 1 else x
        # Channels-last runs oneDNN's convolutions about twice as fast on CPU at these tiny sizes.
        h = self.inp(h.contiguous(memory_format=torch.channels_last))
        for block in self.enc:
            h = block(h, emb)
        skip = h
        h = self.down(h)
        for block in self.mid:
            h = block(h, emb)
        # Project to C channels before upsampling: the conv then runs at a quarter of the positions.
        h = F.interpolate(self.up(h), scale_factor=2, mode="nearest") + skip
        for block in self.dec:
            h = block(h, emb)
        out = self.out(F.silu(self.out_norm(h)))
        if up > 1:
            # Averaging the up x up cells is the adjoint of nearest upsampling: back on the 8x8 grid.
            out = F.avg_pool2d(out, up)
        if not self.config.score_head:
            return {"velocity": out.contiguous()}
        v, s = out.chunk(2, dim=1)
        return {"velocity": v.contiguous(), "score": s.contiguous()}
