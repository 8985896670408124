"""Checkpoints: weights plus a JSON-able description, written atomically, read with ``weights_only=True``."""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import torch

from gft import __version__
from gft.core.models import FlowModel, ModelConfig, build_model

FORMAT = "gft-flow-checkpoint"
FORMAT_VERSION = 1


@dataclass
class Checkpoint:
    """A loaded checkpoint: the rebuilt model (on CPU) and its metadata."""

    model: FlowModel
    data: str  # the --data spec the model was trained on
    train: dict  # the TrainConfig as a dict
    extra: dict = field(default_factory=dict)  # history, parent checkpoint, image options ...

    @property
    def training_settings(self) -> dict:
        """What the samplers need to know about how the model was trained."""
        return {"sigma": self.train.get("sigma"), "coupling": self.train.get("coupling")}


def atomic_write_bytes(path: str | Path, payload: bytes) -> None:
    """Write to a temporary file beside ``path``, fsync, then rename: never a half-written file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(payload)
            f.flush()
            os.fsync(f.fileno())
        # mkstemp creates 0600 files; give the result the permissions a plain open() would.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def checkpoint_bytes(model: FlowModel, data: str, train: dict, extra: dict | None = None) -> bytes:
    """Serialise a checkpoint in memory (the app offers these bytes as a download)."""
    import io

    meta = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "gft_version": __version__,
        "model": model.config.to_dict(),
        "data": data,
        "train": train,
        "extra": extra or {},
    }
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    buf = io.BytesIO()
    # Metadata as a JSON string: weights_only loading accepts it and it stays human-readable.
    torch.save({"meta": json.dumps(meta), "state_dict": state}, buf)
    return buf.getvalue()


def save_checkpoint(path: str | Path, model: FlowModel, data: str, train: dict, extra: dict | None = None) -> None:
    atomic_write_bytes(path, checkpoint_bytes(model, data, train, extra))


def load_checkpoint(path: str | Path) -> Checkpoint:
    """Load and validate; a missing, foreign or mismatched file raises ValueError with the reason."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"checkpoint not found: {path}")
    with open(path, "rb") as f:
        return checkpoint_from_bytes(f.read(), str(path))


def checkpoint_from_bytes(payload: bytes, source: str = "checkpoint") -> Checkpoint:
    import io

    try:
        raw = torch.load(io.BytesIO(payload), map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for foreign files; all mean "not ours"
        raise ValueError(f"{source}: not a gft checkpoint (cannot be read: {type(exc).__name__})") from None
    if not isinstance(raw, dict) or "meta" not in raw or "state_dict" not in raw:
        raise ValueError(f"{source}: not a gft checkpoint (unexpected contents)")
    try:
        meta = json.loads(raw["meta"])
    except (TypeError, ValueError):
        raise ValueError(f"{source}: not a gft checkpoint (metadata unreadable)") from None
    if meta.get("format") != FORMAT:
        raise ValueError(f"{source}: not a gft flow checkpoint (format {meta.get('format')!r})")
    if meta.get("format_version") != FORMAT_VERSION:
        raise ValueError(
            f"{source}: checkpoint format version {meta.get('format_version')} is not supported (expected {FORMAT_VERSION})"
        )
    try:
        config = ModelConfig.from_dict(meta["model"])
        model = build_model(config)
        model.load_state_dict(raw["state_dict"])
    except (KeyError, TypeError, ValueError, RuntimeError) as exc:
        # torch's load_state_dict message spans many lines; keep one line, short enough to read.
        detail = " ".join(str(exc).split())
        detail = detail if len(detail) <= 200 else detail[:197] + "..."
        raise ValueError(f"{source}: checkpoint weights do not match its model description ({detail})") from None
    model.eval()
    return Checkpoint(model=model, data=meta.get("data", ""), train=meta.get("train", {}), extra=meta.get("extra", {}))
