"""User point files (``file:PATH``, app uploads): ``.npy`` or ``.csv`` of N x 2 points, validated at the boundary.

What is refused, each with one line naming the file: a foreign extension, an unreadable or pickled
``.npy``, non-numeric CSV lines, a shape other than N x 2, fewer than :data:`MIN_FILE_ROWS` rows,
non-real values (complex, text, objects), NaN or infinite values, values beyond :data:`MAX_ABS_VALUE`,
and points whose spread is below :data:`MIN_SPREAD` (a single point, or a cloud far from unit scale).
Points are never rescaled silently: the model's noise is N(0, I), so the user standardises.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

MIN_FILE_ROWS = 8
# The flow starts from N(0, I): data a thousand standard deviations away trains on losses of 1e6 and
# more, and at lr near 1 grows without bound. Beyond these scales we ask for standardised points.
MAX_ABS_VALUE = 1e3
MIN_SPREAD = 1e-3  # the largest per-axis standard deviation must reach this
STANDARDISE_HINT = "standardise your points first (subtract the mean, divide by the std)"


def validate_points(arr: np.ndarray, source: str) -> np.ndarray:
    """Check an (N, 2) array of user points; return it as float32 or raise a ValueError naming the problem."""
    arr = np.asarray(arr)
    if not (np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)):
        raise ValueError(f"{source}: values must be real numbers, got dtype {arr.dtype}")
    if arr.ndim != 2 or arr.shape[1] != 2:
        raise ValueError(f"{source}: expected an N x 2 array of points, got shape {arr.shape}")
    if arr.shape[0] < MIN_FILE_ROWS:
        raise ValueError(f"{source}: need at least {MIN_FILE_ROWS} rows, got {arr.shape[0]}")
    arr = arr.astype(np.float64)  # every check before the float32 cast, which would overflow to inf
    if not np.isfinite(arr).all():
        bad = int((~np.isfinite(arr)).any(axis=1).sum())
        raise ValueError(f"{source}: {bad} row(s) hold NaN or infinite values")
    if (peak := np.abs(arr).max()) > MAX_ABS_VALUE:
        raise ValueError(f"{source}: values must lie within +-{MAX_ABS_VALUE:g} (largest {peak:.3g}); {STANDARDISE_HINT}")
    if np.ptp(arr, axis=0).max() == 0:
        raise ValueError(f"{source}: all rows are the same point; a distribution needs spread")
    if (spread := arr.std(axis=0).max()) < MIN_SPREAD:
        raise ValueError(f"{source}: the points spread only {spread:.3g} (need a std >= {MIN_SPREAD:g}); {STANDARDISE_HINT}")
    return arr.astype(np.float32)


def load_points_file(path: str | Path) -> np.ndarray:
    """Read an ``.npy`` or ``.csv`` file of N x 2 points (a header row in a CSV is skipped)."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"data file not found: {path}")
    suffix = path.suffix.lower()
    if suffix not in (".npy", ".csv"):
        raise ValueError(f"{path}: data files must be .npy or .csv, got {suffix or 'no extension'!r}")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ValueError(f"{path}: cannot read the file ({exc.strerror or type(exc).__name__})") from None
    return _parse(data, suffix, str(path))


def points_from_bytes(data: bytes, filename: str) -> np.ndarray:
    """Parse an uploaded ``.npy``/``.csv`` (the app's uploads) with the same checks as files."""
    suffix = Path(filename).suffix.lower()
    if suffix not in (".npy", ".csv"):
        raise ValueError(f"{filename}: uploads must be .npy or .csv, got {suffix or 'no extension'!r}")
    return _parse(data, suffix, filename)


def _parse(data: bytes, suffix: str, source: str) -> np.ndarray:
    arr = _read_npy(data, source) if suffix == ".npy" else _parse_csv_text(data.decode("utf-8", errors="replace"), source)
    return validate_points(arr, source)


def _read_npy(data: bytes, source: str) -> np.ndarray:
    """numpy's own errors mislead here (one advises allow_pickle=True); say what is wrong instead."""
    try:
        return np.load(io.BytesIO(data), allow_pickle=False)
    except ValueError as exc:
        if "pickle" in str(exc):
            raise ValueError(f"{source}: not a valid .npy file of numbers (it holds Python objects, which are never loaded)") from None
        raise ValueError(f"{source}: not a valid .npy file (unreadable header or data)") from None
    except (OSError, EOFError):
        raise ValueError(f"{source}: not a valid .npy file (truncated or unreadable)") from None


def _parse_csv_text(text: str, source: str) -> np.ndarray:
    """Comma- or semicolon-separated numbers; a non-numeric first line is a header; blank lines are skipped.

    numpy's C reader does the work (a Python loop took 1 s per 8 MB); only a file it refuses is walked
    line by line, to name the offending line.
    """
    text = text.replace(";", ",")
    skip = _data_start(text)
    if skip is None:
        raise ValueError(f"{source}: the file holds no data rows")
    try:
        return np.loadtxt(io.StringIO(text), delimiter=",", skiprows=skip, ndmin=2, dtype=np.float64)
    except ValueError:
        _raise_first_bad_line(text.splitlines(), skip, source)
        raise  # not reached: the walk above names the line numpy refused


def _data_start(text: str) -> int | None:
    """Index of the first data line (after leading blank lines and an optional header), or None if there is none."""
    lines = io.StringIO(text)
    for i, line in enumerate(lines):
        if line.strip():
            if _numeric_row(line):
                return i
            rest = any(more.strip() for more in lines)  # a header needs data after it
            return i + 1 if rest else None
    return None


def _numeric_row(line: str) -> bool:
    try:
        [float(p) for p in line.split(",")]
    except ValueError:
        return False
    return True


def _raise_first_bad_line(lines: list[str], skip: int, source: str) -> None:
    width = None
    for i in range(skip, len(lines)):
        line = lines[i].strip()
        if not line:
            continue
        if not _numeric_row(line):
            raise ValueError(f"{source}: line {i + 1} is not numeric: {line[:60]!r}")
        if width is not None and len(line.split(",")) != width:
            raise ValueError(f"{source}: rows have different numbers of columns")
        width = len(line.split(","))
    raise ValueError(f"{source}: the file could not be parsed as numbers")
