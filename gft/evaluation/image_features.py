"""Feature spaces for the FD of user image sets (any (C, H, W) the convnet takes).

* With labels: a small classifier trained on the file's train split (every class of the file, so the
  features tell the classes apart whatever subset a spec keeps), seeded and trained for a fixed
  number of steps at evaluation time, then kept in memory by the content hash of its training data.
  A few seconds on a CPU for 28x28; nothing is written to disk.
* Without labels: fixed random convolutional features (weights drawn from ``RANDOM_FEATURE_SEED``,
  never trained): a yardstick that only depends on the image shape, so FDs of one shape compare
  across runs and machines. It is blunter than a trained classifier; the evaluation notes say so.

Both read model-scale images clamped to [-1, 1], as a saved sample would be.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

CLASSIFIER_DIM = 32
RANDOM_DIM = 64
CLASSIFIER_STEPS = 150
CLASSIFIER_BATCH = 64
CLASSIFIER_LR = 2e-3
CLASSIFIER_SEED = 0
RANDOM_FEATURE_SEED = 20_250_113
RECIPE = 1  # bump when an architecture or the recipe changes: the in-memory cache keys on it
_CACHE_SIZE = 4


def _trunk(channels: int, width: int, out_dim: int) -> nn.Sequential:
    # Two strided halvings then a 2x2 average: the same four-quadrant summary at 8x8, 28x28 or 64x64.
    # Strided convolutions rather than pooling: half the cost of training at 28x28 on a CPU.
    return nn.Sequential(
        nn.Conv2d(channels, width, 3, stride=2, padding=1), nn.ReLU(),
        nn.Conv2d(width, 2 * width, 3, stride=2, padding=1), nn.ReLU(),
        nn.Conv2d(2 * width, 2 * width, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(2),
        nn.Flatten(), nn.Linear(8 * width, out_dim),
    )  # fmt: skip


class LabelClassifier(nn.Module):
    """Features (CLASSIFIER_DIM) and a head over the file's classes (in sorted label order)."""

    def __init__(self, channels: int, n_classes: int) -> None:
        super().__init__()
        self.trunk = _trunk(channels, 16, CLASSIFIER_DIM)
        self.head = nn.Linear(CLASSIFIER_DIM, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(F.relu(self.trunk(x.clamp(-1.0, 1.0))))


@dataclass(frozen=True)
class FeatureSpace:
    """What an FD is measured in: ``features(x)`` (N, dim) float64 and, with labels, class predictions."""

    name: str  # "classifier" or "random"
    dim: int
    network: nn.Module
    classes: tuple[int, ...] | None  # the labels the classifier predicts (None for random features)

    @torch.no_grad()
    def features(self, x: torch.Tensor, batch: int = 1024) -> torch.Tensor:
        trunk = self.network.trunk if self.classes is not None else self.network
        return torch.cat([trunk(c.clamp(-1.0, 1.0)).double() for c in x.detach().float().cpu().split(batch)])

    @torch.no_grad()
    def predict(self, x: torch.Tensor, batch: int = 1024) -> torch.Tensor:
        """Predicted labels (the file's own label values), classifier spaces only."""
        if self.classes is None:
            raise ValueError("random features make no class predictions")
        idx = torch.cat([self.network(c).argmax(1) for c in x.detach().float().cpu().split(batch)])
        return torch.tensor(self.classes)[idx]

    def describe(self) -> str:
        if self.classes is None:
            return f"fd is measured in {self.dim} fixed random convolutional features (seed {RANDOM_FEATURE_SEED}, untrained: the file has no labels)"
        return (f"fd is measured in the {self.dim} features of a classifier trained on the file's labels "
                f"({len(self.classes)} classes, {CLASSIFIER_STEPS} seeded steps on its train split)")  # fmt: skip


def random_features(channels: int) -> FeatureSpace:
    """The fixed random feature space for images of ``channels`` channels."""
    gen = torch.Generator().manual_seed(RANDOM_FEATURE_SEED)
    net = _trunk(channels, 16, RANDOM_DIM)
    with torch.no_grad():
        for p in net.parameters():
            # He-scaled normal weights keep the ReLU activations at a steady scale through the layers.
            fan_in = p[0].numel() if p.dim() > 1 else 1
            p.copy_(torch.randn(p.shape, generator=gen) * (2.0 / fan_in) ** 0.5 if p.dim() > 1 else torch.zeros(p.shape))
    return FeatureSpace("random", RANDOM_DIM, net.eval(), None)


def train_label_classifier(images: torch.Tensor, labels: torch.Tensor, seed: int = CLASSIFIER_SEED) -> FeatureSpace:
    """Train the label classifier on model-scale ``images`` (N, C, H, W) and their labels."""
    classes = tuple(int(c) for c in labels.unique().tolist())
    if len(classes) < 2:
        raise ValueError(f"a label classifier needs at least 2 classes, got {list(classes)}")
    index = torch.searchsorted(torch.tensor(classes), labels)
    gen = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)  # the initialisers draw from the global RNG: fork it, never reseed the caller's
        net = LabelClassifier(images.shape[1], len(classes))
    opt = torch.optim.Adam(net.parameters(), lr=CLASSIFIER_LR)
    net.train()
    for _ in range(CLASSIFIER_STEPS):
        idx = torch.randint(len(images), (min(CLASSIFIER_BATCH, len(images)),), generator=gen)
        loss = F.cross_entropy(net(images[idx]), index[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return FeatureSpace("classifier", CLASSIFIER_DIM, net.eval(), classes)


_cache: OrderedDict[str, FeatureSpace] = OrderedDict()
_lock = threading.Lock()


def _digest(images: torch.Tensor, labels: torch.Tensor | None) -> str:
    h = hashlib.sha256(f"{RECIPE}:{tuple(images.shape)}".encode())
    h.update(images.float().contiguous().numpy().tobytes())
    if labels is not None:
        h.update(labels.long().contiguous().numpy().tobytes())
    return h.hexdigest()


def feature_space(train_images: torch.Tensor, train_labels: torch.Tensor | None) -> FeatureSpace:
    """The FD features of a file: its label classifier when labelled (trained once per content), else random."""
    if train_labels is None:
        return random_features(train_images.shape[1])
    key = _digest(train_images, train_labels)
    with _lock:  # two app sessions evaluating one file train it once
        if key not in _cache:
            _cache[key] = train_label_classifier(train_images, train_labels)
            while len(_cache) > _CACHE_SIZE:
                _cache.popitem(last=False)
        _cache.move_to_end(key)
        return _cache[key]

