"""User point files (``file:PATH``, app uploads): ``.npy`` or ``.csv`` of N x 2 points, validated at the boundary."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

MIN_FILE_ROWS = 8
MAX_ABS_VALUE = 1e6


def validate_points(arr: np.ndarray, source: str) -> np.ndarray:
    """Check an (N, 2) array of user points; return it as float32 or raise a ValueError naming the problem."""
    arr = np.asarray(arr)
    if arr.ndim != 2 or arr.shape[1] != 2:
        raise ValueError(f"{source}: expected an N x 2 array of points, got shape {arr.shape}")
    if arr.shape[0] < MIN_FILE_ROWS:
        raise ValueError(f"{source}: need at least {MIN_FILE_ROWS} rows, got {arr.shape[0]}")
    if not np.issubdtype(arr.dtype, np.number):
        raise ValueError(f"{source}: values must be numeric, got dtype {arr.dtype}")
    arr = arr.astype(np.float32)
    if not np.isfinite(arr).all():
        bad = int((~np.isfinite(arr)).any(axis=1).sum())
        raise ValueError(f"{source}: {bad} row(s) hold NaN or infinite values")
    if np.abs(arr).max() > MAX_ABS_VALUE:
        raise ValueError(f"{source}: values must lie within +-{MAX_ABS_VALUE:g}")
    if np.ptp(arr, axis=0).max() == 0:
        raise ValueError(f"{source}: all rows are the same point; a distribution needs spread")
    return arr


def load_points_file(path: str | Path) -> np.ndarray:
    """Read an ``.npy`` or ``.csv`` file of N x 2 points (a header row in a CSV is skipped)."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"data file not found: {path}")
    suffix = path.suffix.lower()
    try:
        if suffix == ".npy":
            arr = np.load(path, allow_pickle=False)
        elif suffix == ".csv":
            arr = _read_csv(path)
        else:
            raise ValueError(f"{path}: data files must be .npy or .csv, got {suffix or 'no extension'!r}")
    except (OSError, EOFError) as exc:
        raise ValueError(f"{path}: cannot read the file ({exc})") from None
    return validate_points(arr, str(path))


def points_from_bytes(data: bytes, filename: str) -> np.ndarray:
    """Parse an uploaded ``.npy``/``.csv`` (the app's uploads) with the same checks as files."""
    suffix = Path(filename).suffix.lower()
    if suffix == ".npy":
        try:
            arr = np.load(io.BytesIO(data), allow_pickle=False)
        except (ValueError, OSError, EOFError) as exc:
            raise ValueError(f"{filename}: not a valid .npy file ({exc})") from None
    elif suffix == ".csv":
        arr = _parse_csv_text(data.decode("utf-8", errors="replace"), filename)
    else:
        raise ValueError(f"{filename}: uploads must be .npy or .csv, got {suffix or 'no extension'!r}")
    return validate_points(arr, filename)


def _read_csv(path: Path) -> np.ndarray:
    return _parse_csv_text(path.read_text(encoding="utf-8", errors="replace"), str(path))


def _parse_csv_text(text: str, source: str) -> np.ndarray:
    rows = []
    for i, line in enumerate(text.splitlines()):
        line = line.strip()
        if not line:
            continue
        parts = [p.strip() for p in line.replace(";", ",").split(",")]
        try:
            rows.append([float(p) for p in parts])
        except ValueError:
            if i == 0 and not rows:
                continue  # a header row
            raise ValueError(f"{source}: line {i + 1} is not numeric: {line[:60]!r}") from None
    if not rows:
        raise ValueError(f"{source}: the file holds no data rows")
    if len({len(r) for r in rows}) != 1:
        raise ValueError(f"{source}: rows have different numbers of columns")
    return np.asarray(rows, dtype=np.float64)
