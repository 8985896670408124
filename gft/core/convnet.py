"""A small time-conditioned U-Net for images: ``ModelConfig(kind="convnet")``, data shape (C, H, W).

With ``C = config.width`` channels, ``D = config.depth`` residual blocks per level and ``R`` = H x W
(2H x 2W when ``upsample=2``: nearest upsampling on the way in, 2x2 averaging of the heads on the way
out)::

    in conv C_in -> C        @ R     then D ResBlock(C)      -> skip
    stride-2 conv C -> 2C    @ R/2   then D ResBlock(2C)
      [images of 16 pixels a side or more: an inner level at R/4, same shape:
       -> skip2, stride-2 conv 2C -> 2C, D ResBlock(2C), conv 2C -> 2C, nearest up, + skip2, D ResBlock(2C)]
    conv 2C -> C             @ R/2,  nearest up, + skip, then D ResBlock(C)
    GroupNorm, SiLU, conv C -> C_in * heads (velocity, and score with a score head)

Two levels suit 8x8 (the 4x4 bottleneck already sees the whole digit); 28x28 and 32x32 get the inner
level, so the bottleneck (7x7, 8x8) still spans the image. The inner level keeps 2C channels: the cost
stays dominated by the full-resolution blocks. Odd sizes (7x7 after two halvings of 28) upsample back
to the skip's exact size. The 8x8 digits model is the two-level case, with the module names, creation
order (hence seeded weights) and outputs it always had: the shipped checkpoints load unchanged.

Time enters every residual block as a per-channel shift (an embedding MLP shared by all blocks). The
output convolution starts at zero, so a fresh model predicts zero velocity (and score) and its first
steps learn the data rather than undo a random field. On CPU the 3x3 convolutions dominate the cost:
about ``(6 D + 1) C^2 * 9 * R`` multiply-adds per image (4 D of those units at full resolution).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from gft.core.flow_model import FlowModel, ModelConfig, SinusoidalTimeEmbedding

IMAGE_SHAPE = (1, 8, 8)  # the digits
IMAGE_CHANNELS = (1, 3)  # grey or colour
MIN_SIDE, MAX_SIDE = 8, 64
INNER_LEVEL_SIDE = 16  # images this many pixels a side (before upsampling) or more get a third level


def _groups(channels: int) -> int:
    # GroupNorm needs channels divisible by the group count; 8 groups when possible.
    for g in (8, 4, 2):
        if channels % g == 0:
            return g
    return 1


def check_image_shape(shape: tuple[int, ...]) -> None:
    """Refuse a data shape the convnet cannot take: (C, H, W), C in {1, 3}, 8 <= H, W <= 64."""
    if len(shape) != 3 or shape[0] not in IMAGE_CHANNELS or not all(MIN_SIDE <= s <= MAX_SIDE for s in shape[1:]):
        raise ValueError(
            f"data_shape must be (C, H, W) with C in {IMAGE_CHANNELS} and {MIN_SIDE} <= H, W <= {MAX_SIDE} for the convnet, got {shape}"
        )


def levels_for(shape: tuple[int, ...]) -> int:
    """Resolution levels of the U-Net for a (C, H, W) data shape: 2 below 16 pixels a side, else 3."""
    return 3 if min(shape[1:]) >= INNER_LEVEL_SIDE else 2


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


def _blocks(x: torch.Tensor, blocks: nn.ModuleList, emb: torch.Tensor) -> torch.Tensor:
    for block in blocks:
        x = block(x, emb)
    return x


def _up_to(h: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    # Nearest upsampling to the skip's exact size: x2 for even sides, and 4 -> 7 style for odd ones.
    return F.interpolate(h, size=like.shape[-2:], mode="nearest")


class ConvFlow(FlowModel):
    """U-Net (two or three levels by size) with time conditioning; data shape (C, H, W)."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        check_image_shape(config.data_shape)
        if config.depth > 4:
            raise ValueError(f"depth must be in [1, 4] for the convnet (residual blocks per level), got {config.depth}")
        self.config = config
        channels = config.data_shape[0]
        c, emb = config.width, 2 * config.width
        self.embed = nn.Sequential(
            SinusoidalTimeEmbedding(config.time_dim), nn.Linear(config.time_dim, emb), nn.SiLU(), nn.Linear(emb, emb)
        )
        self.inp = nn.Conv2d(channels, c, 3, padding=1)
        self.enc = nn.ModuleList(ResBlock(c, emb) for _ in range(config.depth))
        self.down = nn.Conv2d(c, 2 * c, 3, stride=2, padding=1)
        self.mid = nn.ModuleList(ResBlock(2 * c, emb) for _ in range(config.depth))
        # Built between mid and up only when present, so two-level models keep their seeded weights.
        self.inner = _InnerLevel(2 * c, emb, config.depth) if levels_for(config.data_shape) == 3 else None
        self.up = nn.Conv2d(2 * c, c, 3, padding=1)
        self.dec = nn.ModuleList(ResBlock(c, emb) for _ in range(config.depth))
        self.out_norm = nn.GroupNorm(_groups(c), c)
        n_heads = 2 if config.score_head else 1
        self.out = nn.Conv2d(c, channels * n_heads, 3, padding=1)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def heads(self, x: torch.Tensor, t: torch.Tensor) -> dict[str, torch.Tensor]:
        emb = self.embed(t)
        up = self.config.upsample
        h = F.interpolate(x, scale_factor=up, mode="nearest") if up > 1 else x
        # Channels-last runs oneDNN's convolutions about twice as fast on CPU at these tiny sizes.
        h = self.inp(h.contiguous(memory_format=torch.channels_last))
        skip = _blocks(h, self.enc, emb)
        h = _blocks(self.down(skip), self.mid, emb)
        if self.inner is not None:
            h = self.inner(h, emb)
        # Project to C channels before upsampling: the conv then runs at a quarter of the positions.
        h = _blocks(_up_to(self.up(h), skip) + skip, self.dec, emb)
        out = self.out(F.silu(self.out_norm(h)))
        if up > 1:
            # Averaging the up x up cells is the adjoint of nearest upsampling: back on the data grid.
            out = F.avg_pool2d(out, up)
        if not self.config.score_head:
            return {"velocity": out.contiguous()}
        v, s = out.chunk(2, dim=1)
        return {"velocity": v.contiguous(), "score": s.contiguous()}


class _InnerLevel(nn.Module):
    """The third level of larger images: down to R/4 and back, with its own skip, at ``c`` channels."""

    def __init__(self, c: int, emb: int, depth: int) -> None:
        super().__init__()
        self.down = nn.Conv2d(c, c, 3, stride=2, padding=1)
        self.mid = nn.ModuleList(ResBlock(c, emb) for _ in range(depth))
        self.up = nn.Conv2d(c, c, 3, padding=1)
        self.dec = nn.ModuleList(ResBlock(c, emb) for _ in range(depth))

    def forward(self, skip: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        h = _blocks(self.down(skip), self.mid, emb)
        return _blocks(_up_to(self.up(h), skip) + skip, self.dec, emb)
