"""The suite's resumable cache: every finished task's result is kept on disk under a key that names
what it computed, so an interrupted or partial run (``--only``) picks up where it stopped.

The key is the task's own description plus a fingerprint of the sizes that shape it; a result whose
sizes changed is simply not found. Files are pickles this suite writes and reads itself (rows hold
numpy weights); one that cannot be read is reported and recomputed, never trusted.
"""

from __future__ import annotations

import hashlib
import json
import pickle
import re
from pathlib import Path
from typing import Any, Callable

from gft.core.checkpoints import atomic_write_bytes

VERSION = 1  # bump when a task's meaning changes, so old results are not reused


def fingerprint(payload: dict) -> str:
    text = json.dumps({"version": VERSION, **payload}, sort_keys=True, default=repr)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


class Store:
    """Results by key under ``root``; ``log`` hears about unreadable files."""

    def __init__(self, root: Path, log: Callable[[str], None] = print) -> None:
        self.root = Path(root)
        self.log = log

    def _path(self, key: str) -> Path:
        safe = re.sub(r"[^A-Za-z0-9_.=-]+", "_", key)[:120]
        return self.root / f"{safe}-{hashlib.sha256(key.encode()).hexdigest()[:12]}.pkl"

    def get(self, key: str) -> Any | None:
        path = self._path(key)
        if not path.exists():
            return None
        try:
            with path.open("rb") as fh:
                stored = pickle.load(fh)
        except Exception as exc:  # a torn or foreign file: recompute rather than trust it
            self.log(f"  cache: ignoring unreadable {path.name} ({type(exc).__name__})")
            return None
        return stored["row"] if isinstance(stored, dict) and stored.get("key") == key else None

    def put(self, key: str, row: Any) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(self._path(key), pickle.dumps({"key": key, "row": row}, protocol=pickle.HIGHEST_PROTOCOL))
