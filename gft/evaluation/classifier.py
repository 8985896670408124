"""The digit classifier whose features define the images' Frechet distance (FD), trained and cached here.

A small convnet reads model-scale images (N, 1, 8, 8) and has two heads on one 32-dimensional feature
layer: the digit (10 classes) and, per style transform, whether it was applied. It trains on the train
split of all 10 classes only, each image passed through a random subset of the transforms in a random
order. Why the style head: trained on the digit alone the features would learn to ignore style, and an
FD against inverted digits could not tell inverted samples from plain ones. With it, the features carry
class and style, and ``class_fractions`` stays meaningful on shifted digits.

The weights are cached in ``assets/digits_classifier.pt`` (written atomically, loaded with
``weights_only=True``) and retrained when the file is missing or describes another split, transform
set or architecture version.
"""

from __future__ import annotations

import hashlib
import io
import json
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from gft.core.checkpoints import atomic_write_bytes
from gft.data.digits import N_CLASSES, TRANSFORMS, DigitsSpec, digit_set, split_indices, to_model_scale

FEATURE_DIM = 32
FORMAT = "gft-digits-classifier"
VERSION = 1  # bump when the architecture or the training recipe changes: cached weights then retrain
DEFAULT_PATH = Path(__file__).resolve().parents[2] / "assets" / "digits_classifier.pt"
TRAIN_SEED = 0
EPOCHS = 80
BATCH = 128
TRANSFORM_PROB = 0.35  # per transform; about 18 % of training images stay plain


class DigitClassifier(nn.Module):
    """Conv features (FEATURE_DIM) with a digit head and a multi-label style head."""

    def __init__(self) -> None:
        super().__init__()
        self.trunk = nn.Sequential(
            nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(),
            nn.Conv2d(32, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(), nn.Linear(64 * 2 * 2, 128), nn.ReLU(), nn.Linear(128, FEATURE_DIM),
        )  # fmt: skip
        self.digit = nn.Linear(FEATURE_DIM, N_CLASSES)
        self.style = nn.Linear(FEATURE_DIM, len(TRANSFORMS))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """FD features of model-scale images; inputs are clamped to the pixel range like saved samples."""
        return self.trunk(x.clamp(-1.0, 1.0))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = F.relu(self.features(x))
        return self.digit(h), self.style(h)


@dataclass(frozen=True)
class ClassifierOutput:
    """Features and predicted digits of a batch (CPU tensors)."""

    features: torch.Tensor  # (N, FEATURE_DIM) float64
    predictions: torch.Tensor  # (N,) int64


@torch.no_grad()
def classify(classifier: DigitClassifier, x: torch.Tensor, batch: int = 2048) -> ClassifierOutput:
    """Features and digit predictions of model-scale images (N, 1, 8, 8), in batches."""
    classifier.eval()
    feats, preds = [], []
    for chunk in x.detach().float().cpu().split(batch):
        f = classifier.features(chunk)
        feats.append(f.double())
        preds.append(classifier.digit(F.relu(f)).argmax(1))
    return ClassifierOutput(torch.cat(feats), torch.cat(preds))


def accuracy(classifier: DigitClassifier, spec: DigitsSpec) -> float:
    """Digit accuracy on the held-out images of ``spec`` (transforms applied)."""
    held = digit_set(spec, "heldout")
    pred = classify(classifier, to_model_scale(held.pixels)).predictions
    return float((pred == held.labels).float().mean())


def _fingerprint() -> str:
    """What the cached weights depend on: split, transform names, architecture version."""
    train_idx, held_idx = split_indices()
    h = hashlib.sha256()
    h.update(np.ascontiguousarray(train_idx).tobytes())
    h.update(np.ascontiguousarray(held_idx).tobytes())
    h.update(json.dumps([list(TRANSFORMS), FEATURE_DIM, VERSION, EPOCHS, TRANSFORM_PROB]).encode())
    return h.hexdigest()[:16]


def _augment(pixels: torch.Tensor, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """A random subset of the transforms per image, in a random order per batch; returns the style flags."""
    names = list(TRANSFORMS)
    flags = torch.rand(len(pixels), len(names), generator=g) < TRANSFORM_PROB
    out = pixels.clone()
    for k in torch.randperm(len(names), generator=g).tolist():
        rows = flags[:, k]
        if rows.any():
            out[rows] = TRANSFORMS[names[k]](out[rows])
    return out, flags.float()


def train_classifier(seed: int = TRAIN_SEED, epochs: int = EPOCHS) -> DigitClassifier:
    """Train on the train split of all 10 digits with style augmentation (about 40-90 s on one CPU core)."""
    train = digit_set(DigitsSpec(tuple(range(N_CLASSES))), "train")
    g = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)  # initial weights only
        model = DigitClassifier()
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs)
    model.train()
    for _ in range(epochs):
        order = torch.randperm(len(train), generator=g)
        for idx in order.split(BATCH):
            pixels, style = _augment(train.pixels[idx], g)
            digit_logits, style_logits = model(to_model_scale(pixels))
            loss = F.cross_entropy(digit_logits, train.labels[idx]) + F.binary_cross_entropy_with_logits(style_logits, style)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        sched.step()
    model.eval()
    return model


def save_classifier(model: DigitClassifier, path: str | Path) -> None:
    meta = {"format": FORMAT, "fingerprint": _fingerprint(), "transforms": list(TRANSFORMS), "feature_dim": FEATURE_DIM}
    buf = io.BytesIO()
    torch.save({"meta": json.dumps(meta), "state_dict": model.state_dict()}, buf)
    atomic_write_bytes(path, buf.getvalue())


def _read(path: Path) -> DigitClassifier | None:
    """The cached classifier, or None when the file is missing, foreign or stale."""
    if not path.is_file():
        return None
    try:
        raw = torch.load(path, map_location="cpu", weights_only=True)
        meta = json.loads(raw["meta"])
        if meta.get("format") != FORMAT or meta.get("fingerprint") != _fingerprint():
            return None
        model = DigitClassifier()
        model.load_state_dict(raw["state_dict"])
    except Exception:  # any unreadable file is treated as absent and replaced
        return None
    model.eval()
    return model


_CACHE: dict[Path, DigitClassifier] = {}
_LOCK = threading.Lock()


def load_classifier(path: str | Path = DEFAULT_PATH) -> DigitClassifier:
    """The cached classifier (CPU, eval mode); trained and written to ``path`` when missing or stale."""
    path = Path(path).resolve()
    with _LOCK:  # the app may evaluate from several threads; train at most once per process
        if path not in _CACHE:
            model = _read(path)
            if model is None:
                model = train_classifier()
                save_classifier(model, path)
            _CACHE[path] = model
        return _CACHE[path]
