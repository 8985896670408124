"""Handwritten digits (scikit-learn's 1,797 8x8 images, values 0..16): specs, style shifts and a fixed split.

A spec reads ``digits:CLASSES[+TRANSFORM...]``: CLASSES is a digit (``7``), a range (``0-4``) or a
comma list of digits and ranges (``1,3,5`` or ``0-2,7``); transforms apply left to right, each at
most once, to training and held-out images alike:

* ``invert``: ``16 - x`` (white digits on black become black on white);
* ``thicken``: ``max(x, 0.6 * max of the 4 neighbours)``, a dimmer one-pixel rim around every stroke
  (a full dilation closes the holes of 0, 6, 8, 9 at this resolution);
* ``rotate``: 90 degrees counter-clockwise (``torch.rot90``), exact on the pixel grid;
* ``shift``: one pixel to the right, repeating the left column (the right column holds ~0.1 % of the ink,
  and repeating keeps the background right after ``invert``).

Order matters: ``+invert+thicken`` grows the bright background into the strokes (thinner dark strokes).

Every image belongs once and for all to the train or held-out part of its class (70/30, seeded by
``SPLIT_SEED``, independent of any run seed and of the spec), so no spec ever trains on an image
another spec evaluates on. ``limit`` takes a nested, class-balanced subset of the train part.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import torch
from torch.nn import functional as F

from gft.data.classes import parse_class_list

N_CLASSES = 10
PIXEL_MAX = 16.0
DATA_SHAPE = (1, 8, 8)  # model space: one channel, pixels scaled to [-1, 1]
SPLIT_SEED = 20_240_601
HELDOUT_FRACTION = 0.3
THICKEN_STRENGTH = 0.6


def _invert(x: torch.Tensor) -> torch.Tensor:
    return PIXEL_MAX - x


def _thicken(x: torch.Tensor) -> torch.Tensor:
    p = F.pad(x.reshape(-1, 1, 8, 8), (1, 1, 1, 1)).squeeze(1)
    neighbours = torch.stack([p[:, 1:-1, :-2], p[:, 1:-1, 2:], p[:, :-2, 1:-1], p[:, 2:, 1:-1]]).amax(0)
    return torch.maximum(x, THICKEN_STRENGTH * neighbours.reshape(x.shape))


def _rotate(x: torch.Tensor) -> torch.Tensor:
    return torch.rot90(x, 1, dims=(-2, -1))


def _shift(x: torch.Tensor) -> torch.Tensor:
    return torch.cat([x[..., :, :1], x[..., :, :-1]], dim=-1)


# Pixel-scale image batches (..., 8, 8) -> same shape, values stay in [0, 16].
TRANSFORMS = {"invert": _invert, "thicken": _thicken, "rotate": _rotate, "shift": _shift}


@dataclass(frozen=True)
class DigitsSpec:
    """A parsed ``digits:`` spec: sorted classes and the transforms in the order they apply."""

    classes: tuple[int, ...]
    transforms: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.classes:
            raise ValueError("digits spec: classes must name at least one digit 0-9")
        if any(not 0 <= c < N_CLASSES for c in self.classes):
            raise ValueError(f"digits spec: classes must be digits 0-9, got {list(self.classes)}")
        if len(set(self.classes)) != len(self.classes) or list(self.classes) != sorted(self.classes):
            raise ValueError(f"digits spec: classes must be sorted and distinct, got {list(self.classes)}")
        for name in self.transforms:
            if name not in TRANSFORMS:
                raise ValueError(f"digits spec: unknown transform {name!r}; choose from {', '.join(TRANSFORMS)}")
        if len(set(self.transforms)) != len(self.transforms):
            raise ValueError(f"digits spec: each transform may appear once, got {'+'.join(self.transforms)}")

    @property
    def text(self) -> str:
        return "digits:" + ",".join(map(str, self.classes)) + "".join("+" + t for t in self.transforms)

    def apply(self, pixels: torch.Tensor) -> torch.Tensor:
        """The spec's transforms, left to right, on pixel-scale images (..., 8, 8)."""
        for name in self.transforms:
            pixels = TRANSFORMS[name](pixels)
        return pixels


def parse_digits_spec(text: str) -> DigitsSpec:
    """Parse ``digits:CLASSES[+TRANSFORM...]``; a ValueError names what is wrong."""
    if not text.startswith("digits:"):
        raise ValueError(f"digits spec must start with 'digits:', got {text!r}")
    body = text[len("digits:"):].replace(" ", "")
    class_part, *transforms = body.split("+")
    if not class_part:
        raise ValueError(f"{text!r}: no classes; write e.g. digits:0-4, digits:7 or digits:1,3,5")
    classes = parse_class_list(class_part, text, N_CLASSES - 1, noun="digit")
    if any(not t for t in transforms):
        raise ValueError(f"{text!r}: empty transform after '+'; choose from {', '.join(TRANSFORMS)}")
    return DigitsSpec(classes, tuple(transforms))


@functools.lru_cache(maxsize=1)
def _raw() -> tuple[torch.Tensor, torch.Tensor]:
    from sklearn.datasets import load_digits

    data = load_digits()
    images = torch.from_numpy(data.images.astype(np.float32))
    labels = torch.from_numpy(data.target.astype(np.int64))
    return images, labels


def all_digits() -> tuple[torch.Tensor, torch.Tensor]:
    """Every image in pixel scale (1797, 8, 8) float32 and its label (copies: safe to modify)."""
    images, labels = _raw()
    return images.clone(), labels.clone()


@functools.lru_cache(maxsize=1)
def split_indices() -> tuple[np.ndarray, np.ndarray]:
    """The fixed (train, held-out) image indices: 30 % of every class held out, by ``SPLIT_SEED``."""
    _, labels = _raw()
    rng = np.random.default_rng(SPLIT_SEED)
    train, held = [], []
    for c in range(N_CLASSES):
        idx = rng.permutation(np.flatnonzero(labels.numpy() == c))
        n_held = int(round(HELDOUT_FRACTION * len(idx)))
        held.append(np.sort(idx[:n_held]))
        train.append(np.sort(idx[n_held:]))
    return np.concatenate(train), np.concatenate(held)


@dataclass(frozen=True)
class DigitSet:
    """Pixel-scale images (N, 8, 8) with their labels and the dataset indices they come from."""

    pixels: torch.Tensor
    labels: torch.Tensor
    indices: np.ndarray

    def __len__(self) -> int:
        return len(self.labels)


def digit_set(spec: DigitsSpec, part: str, limit: int | None = None, seed: int = 0) -> DigitSet:
    """The ``train`` or ``heldout`` images of the spec's classes, transformed.

    ``limit`` (train only) keeps ``limit`` images: classes in turn, each in a ``seed``-shuffled order,
    so subsets are class-balanced and nested (the 10 images of a seed are among its 50).
    """
    if part not in ("train", "heldout"):
        raise ValueError(f"part must be 'train' or 'heldout', got {part!r}")
    images, labels = _raw()
    pool = split_indices()[0 if part == "train" else 1]
    pool = pool[np.isin(labels.numpy()[pool], spec.classes)]
    if limit is not None:
        if part != "train":
            raise ValueError("limit applies to the train part only")
        if not 1 <= limit <= len(pool):
            raise ValueError(f"limit must be in [1, {len(pool)}] (the training images of {spec.text}), got {limit}")
        pool = _balanced_subset(pool, labels.numpy()[pool], limit, seed)
    return DigitSet(spec.apply(images[pool]), labels[pool].clone(), pool)


def _balanced_subset(pool: np.ndarray, pool_labels: np.ndarray, limit: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    queues = [list(rng.permutation(pool[pool_labels == c])) for c in np.unique(pool_labels)]
    chosen: list[int] = []
    rank = 0
    while len(chosen) < limit:
        for q in queues:
            if rank < len(q) and len(chosen) < limit:
                chosen.append(int(q[rank]))
        rank += 1
    return np.sort(np.asarray(chosen))


def to_model_scale(pixels: torch.Tensor) -> torch.Tensor:
    """Pixel images (..., 8, 8) in [0, 16] -> model inputs (N, 1, 8, 8) in [-1, 1]."""
    return (pixels.reshape(-1, 1, 8, 8).float() / (PIXEL_MAX / 2)) - 1.0


def to_pixels(x: torch.Tensor) -> torch.Tensor:
    """Model-scale images (..., 1, 8, 8) -> pixel scale (..., 8, 8), clamped to [0, 16]."""
    if x.shape[-3:] != (1, 8, 8):
        raise ValueError(f"expected images of shape (..., 1, 8, 8), got {tuple(x.shape)}")
    return ((x.squeeze(-3) + 1.0) * (PIXEL_MAX / 2)).clamp(0.0, PIXEL_MAX)
