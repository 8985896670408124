"""Checkpoints: weights plus a JSON-able description, written atomically, read with ``weights_only=True``.

On load every checkpoint is checked before a model is built: the file is a torch zip archive, its
metadata has the documented types (:data:`META_SCHEMA`), every tensor is finite, and (format version 2)
the weights and metadata match the SHA-256 content hash stored at save time. Version 1 files (the
assets shipped before the hash existed) carry no hash; they are still type- and finiteness-checked.
"""

from __future__ import annotations

import glob
import hashlib
import io
import json
import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from gft import __version__
from gft.core.models import FlowModel, ModelConfig, build_model

FORMAT = "gft-flow-checkpoint"
FORMAT_VERSION = 2  # 2 adds meta["sha256"]; 1 (no hash) is still read
READABLE_VERSIONS = (1, 2)
HASH_FIELD = "sha256"
ZIP_MAGIC = b"PK\x03\x04"  # torch.save's archive; anything else (a raw pickle, say) is not ours
# A temporary file older than this beside a target is a leftover of a killed writer, not one at work:
# writing a checkpoint takes well under a second, so ten minutes leaves a wide margin.
STALE_TEMP_SECONDS = 600

# Top-level metadata fields and their JSON types; keys the loaders read inside train/extra, too.
META_SCHEMA = {"format": str, "format_version": int, "model": dict, "data": str, "train": dict, "extra": dict}
OPTIONAL_META = {"gft_version": str, HASH_FIELD: str}
TRAIN_SCHEMA = {"seed": int, "sigma": (int, float), "coupling": str}  # what samplers and evaluate read
EXTRA_SCHEMA = {"limit": (int, type(None)), "history": list, "parent": (str, type(None)), "base_data": str}


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


def write_target(path: str | Path) -> Path:
    """The file a write to ``path`` replaces: a symlink is followed, so the link stays and its target
    gets the new content (replacing the link by a regular file would silently split the two)."""
    return Path(os.path.realpath(path)) if Path(path).is_symlink() else Path(path)


def check_writable(path: str | Path) -> bool:
    """Check that ``path`` can be written atomically, without writing it; return whether it exists.

    Creates and removes a temporary file in the first existing folder on the way, so a full run is
    not lost to an output that could never be written. Raises OSError with the reason.
    """
    target = write_target(path)
    if target.is_dir():
        raise IsADirectoryError(f"{path} is a directory")
    folder = target.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent  # the write creates the missing folders; probe where it would start
    if not folder.is_dir():
        raise NotADirectoryError(f"{folder} is not a directory")
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=folder)
    os.close(fd)
    os.unlink(tmp)
    return target.exists()


def _file_mode(target: Path) -> int:
    """The mode the written file gets: the replaced file's, else what a plain open() would give."""
    if target.exists():
        return target.stat().st_mode & 0o7777
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def _remove_stale_temps(target: Path) -> None:
    """Remove temporary files of ``target`` left by a killed writer (old enough not to be in flight)."""
    cutoff = time.time() - STALE_TEMP_SECONDS
    for tmp in target.parent.glob(f".{glob.escape(target.name)}.*.tmp"):
        try:
            if tmp.is_file() and tmp.stat().st_mtime < cutoff:
                tmp.unlink()
        except OSError:
            pass  # another writer removed it first, or it is not ours to remove


def atomic_write_bytes(path: str | Path, payload: bytes) -> None:
    """Write to a temporary file beside ``path``, fsync, then rename: never a half-written file.

    The replaced file keeps its mode; a symlink at ``path`` is written through (see :func:`write_target`).
    """
    target = write_target(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    mode = _file_mode(target)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(payload)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)  # mkstemp creates 0600 files
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _remove_stale_temps(target)


def content_hash(meta: dict, state: dict[str, torch.Tensor]) -> str:
    """SHA-256 of the metadata (canonical JSON, without the hash itself) and every tensor in key order.

    Each tensor contributes its name, dtype, shape and raw bytes, so a flipped byte, a renamed or
    reshaped tensor, or an edited metadata field all change the hash.
    """
    digest = hashlib.sha256()
    body = {k: v for k, v in meta.items() if k != HASH_FIELD}
    digest.update(json.dumps(body, sort_keys=True, separators=(",", ":")).encode())
    for name in sorted(state):
        tensor = state[name].detach().cpu().contiguous()
        digest.update(f"\0{name}\0{tensor.dtype}\0{tuple(tensor.shape)}\0".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def checkpoint_bytes(model: FlowModel, data: str, train: dict, extra: dict | None = None) -> bytes:
    """Serialise a checkpoint in memory (the app offers these bytes as a download)."""
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
    meta[HASH_FIELD] = content_hash(meta, state)
    buf = io.BytesIO()
    # Metadata as a JSON string: weights_only loading accepts it and it stays human-readable.
    torch.save({"meta": json.dumps(meta), "state_dict": state}, buf)
    return buf.getvalue()


def save_checkpoint(path: str | Path, model: FlowModel, data: str, train: dict, extra: dict | None = None) -> None:
    atomic_write_bytes(path, checkpoint_bytes(model, data, train, extra))


def load_checkpoint(path: str | Path) -> Checkpoint:
    """Load and validate; a missing, foreign, damaged or mismatched file raises ValueError with the reason."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"checkpoint not found: {path}")
    with open(path, "rb") as f:
        return checkpoint_from_bytes(f.read(), str(path))


def _type_name(expected) -> str:
    types = expected if isinstance(expected, tuple) else (expected,)
    names = {str: "a string", int: "an integer", float: "a number", dict: "an object", list: "a list", type(None): "null"}
    return " or ".join(dict.fromkeys(names[t] for t in types))


def _has_type(value, expected) -> bool:
    if isinstance(value, bool):  # JSON true/false are not numbers here
        return False
    return isinstance(value, expected)


def _check_fields(values: dict, schema: dict, prefix: str, source: str, required: bool) -> None:
    for key, expected in schema.items():
        if key not in values:
            if required:
                raise ValueError(f"{source}: checkpoint metadata lacks the field {prefix}{key!r}")
            continue
        if not _has_type(values[key], expected):
            got = type(values[key]).__name__
            raise ValueError(f"{source}: checkpoint metadata field '{prefix}{key}' must be {_type_name(expected)}, got {got}")


def validate_meta(meta, source: str) -> dict:
    """Check the metadata's types (a JSON object of :data:`META_SCHEMA`); one-line ValueError naming the field."""
    if not isinstance(meta, dict):
        raise ValueError(f"{source}: checkpoint metadata must be a JSON object, got {type(meta).__name__}")
    if meta.get("format") != FORMAT:
        raise ValueError(f"{source}: not a gft flow checkpoint (format {meta.get('format')!r})")
    version = meta.get("format_version")
    if not _has_type(version, int):
        raise ValueError(f"{source}: checkpoint metadata field 'format_version' must be an integer, got {type(version).__name__}")
    if version not in READABLE_VERSIONS:
        raise ValueError(f"{source}: checkpoint format version {version} is not supported (expected one of {READABLE_VERSIONS})")
    _check_fields(meta, META_SCHEMA, "", source, required=True)
    _check_fields(meta, OPTIONAL_META, "", source, required=False)
    if not meta["data"]:
        raise ValueError(f"{source}: checkpoint metadata field 'data' must be a non-empty string")
    _check_fields(meta["train"], TRAIN_SCHEMA, "train.", source, required=False)
    _check_fields(meta["extra"], EXTRA_SCHEMA, "extra.", source, required=False)
    return meta


def _read_archive(payload: bytes, source: str) -> dict:
    if not payload.startswith(ZIP_MAGIC):
        # Checked first: torch warns on some raw pickles before refusing them.
        raise ValueError(f"{source}: not a gft checkpoint (not a torch archive)")
    try:
        raw = torch.load(io.BytesIO(payload), map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for foreign files; all mean "not ours"
        raise ValueError(f"{source}: not a gft checkpoint (cannot be read: {type(exc).__name__})") from None
    if not isinstance(raw, dict) or "meta" not in raw or "state_dict" not in raw:
        raise ValueError(f"{source}: not a gft checkpoint (unexpected contents)")
    if not isinstance(raw["state_dict"], dict) or not all(isinstance(v, torch.Tensor) for v in raw["state_dict"].values()):
        raise ValueError(f"{source}: not a gft checkpoint (state_dict is not a mapping of tensors)")
    return raw


def _check_weights(meta: dict, state: dict, source: str) -> None:
    """Every tensor finite; for version 2, the content hash matches what was saved."""
    for name, tensor in state.items():
        if tensor.is_floating_point() and not torch.isfinite(tensor).all():
            raise ValueError(f"{source}: checkpoint tensor {name!r} holds non-finite values (NaN or infinity); the file is damaged")
    if meta["format_version"] >= 2:
        stored = meta.get(HASH_FIELD)
        if not isinstance(stored, str):
            raise ValueError(f"{source}: checkpoint metadata lacks its content hash field {HASH_FIELD!r}")
        if content_hash(meta, state) != stored:
            raise ValueError(f"{source}: checkpoint content hash does not match; the file was changed or damaged after saving")


def checkpoint_from_bytes(payload: bytes, source: str = "checkpoint") -> Checkpoint:
    raw = _read_archive(payload, source)
    try:
        meta = json.loads(raw["meta"])
    except (TypeError, ValueError):
        raise ValueError(f"{source}: not a gft checkpoint (metadata unreadable)") from None
    meta = validate_meta(meta, source)
    _check_weights(meta, raw["state_dict"], source)
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
    return Checkpoint(model=model, data=meta["data"], train=meta["train"], extra=meta["extra"])
