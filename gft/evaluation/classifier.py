"""The digit classifier whose features define the images' Frechet distance (FD), trained and cached here.

A small convnet reads model-scale images (N, 1, 8, 8) and has two heads on one 32-dimensional feature
layer: the digit (10 classes) and, per style transform, whether it was applied. It trains on the train
split of all 10 classes only, each image passed through a random subset of the transforms in a random
order. Why the style head: trained on the digit alone the features would learn to ignore style, and an
FD against inverted digits could not tell inverted samples from plain ones. With it, the features carry
class and style, and ``class_fractions`` stays meaningful on shifted digits.

The weights are shipped in ``assets/digits_classifier.pt``, built by ``REBUILD_COMMAND`` (seeded,
about a minute on one CPU core) and loaded with ``weights_only=True``. :func:`load_classifier` checks
the file (format, fingerprint of the split, transforms and recipe, finite weights) and raises
:class:`ClassifierFileError` naming the problem and the rebuild command: it never trains on first use,
because a silent minute-long retrain that rewrites a shipped asset would hide a broken checkout and
could change every FD reported since.
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
VERSION = 1  # bump when the architecture or the training recipe changes: the shipped file must then be rebuilt
DEFAULT_PATH = Path(__file__).resolve().parents[2] / "assets" / "digits_classifier.pt"
REBUILD_COMMAND = "python scripts/make_digits_assets.py --classifier-only"
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


class ClassifierFileError(ValueError):
    """The classifier file is missing or fails the load check; the message names the rebuild command."""


def rebuild_command(path: str | Path = DEFAULT_PATH) -> str:
    """The exact command that rebuilds the classifier at ``path``."""
    path = Path(path).resolve()
    return REBUILD_COMMAND if path == DEFAULT_PATH else f"{REBUILD_COMMAND} --classifier-path {path}"


def _first_line(exc: Exception) -> str:
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0] if lines else ''}"


def _check_header(raw: object) -> dict:
    """The file's state dict after checking its format and fingerprint; ValueError says what is wrong."""
    if not isinstance(raw, dict) or not {"meta", "state_dict"} <= set(raw):
        keys = sorted(raw) if isinstance(raw, dict) else type(raw).__name__
        raise ValueError(f"is not a digits classifier file (holds {keys}, expected the keys ['meta', 'state_dict'])")
    try:
        meta = json.loads(raw["meta"])
    except (TypeError, ValueError) as exc:
        raise ValueError(f"has an unreadable 'meta' entry ({_first_line(exc)})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        found = meta.get("format") if isinstance(meta, dict) else meta
        raise ValueError(f"has format {found!r}, expected {FORMAT!r}")
    if meta.get("fingerprint") != _fingerprint():
        raise ValueError(
            f"is stale: built for fingerprint {meta.get('fingerprint')!r}, this code expects {_fingerprint()!r} "
            f"(digit split, transforms {list(TRANSFORMS)}, version {VERSION}, {EPOCHS} epochs)"
        )
    return raw["state_dict"]


def _check_weights(state_dict: object) -> DigitClassifier:
    """The classifier holding ``state_dict`` after checking it fits the architecture and is finite."""
    if not isinstance(state_dict, dict):
        raise ValueError(f"has a 'state_dict' of type {type(state_dict).__name__}, expected a dict of tensors")
    model = DigitClassifier()
    try:
        model.load_state_dict(state_dict)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(f"has weights that do not fit the architecture ({_first_line(exc)})") from None
    bad = [name for name, t in model.state_dict().items() if not torch.isfinite(t).all()]
    if bad:
        raise ValueError(f"has non-finite weights in {', '.join(bad)}")
    model.eval()
    return model


def read_classifier(path: str | Path = DEFAULT_PATH) -> DigitClassifier:
    """The classifier in ``path`` after the load check (uncached); :class:`ClassifierFileError` otherwise."""
    path = Path(path).resolve()
    try:
        if not path.is_file():
            raise ValueError("is missing")
        try:
            raw = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # torch raises several types for a truncated or foreign file; all mean unreadable
            raise ValueError(f"cannot be read as a torch file ({_first_line(exc)})") from None
        return _check_weights(_check_header(raw))
    except ValueError as exc:
        raise ClassifierFileError(f"digits classifier {path} {exc}; rebuild it with: {rebuild_command(path)}") from None


def build_classifier(path: str | Path = DEFAULT_PATH) -> DigitClassifier:
    """Train the classifier from its seed and write it to ``path`` (what ``REBUILD_COMMAND`` runs)."""
    path = Path(path).resolve()
    model = train_classifier()
    save_classifier(model, path)
    with _LOCK:
        _CACHE.pop(path, None)  # the next load reads the new file
    return read_classifier(path)


_CACHE: dict[Path, DigitClassifier] = {}
_LOCK = threading.Lock()


def load_classifier(path: str | Path = DEFAULT_PATH) -> DigitClassifier:
    """The shipped classifier (CPU, eval mode), checked once per process; :class:`ClassifierFileError` if it fails."""
    path = Path(path).resolve()
    with _LOCK:  # the app may evaluate from several threads; read and check the file once
        if path not in _CACHE:
            _CACHE[path] = read_classifier(path)
        return _CACHE[path]
