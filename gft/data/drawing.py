"""Hand-drawn 2D targets: strokes (polylines) that become a point cloud, and a compact text form for URLs.

A stroke is what the user drew in one go. :meth:`Drawing.points` spreads ``n`` points uniformly by arc
length over all strokes and jitters them with N(0, spread²). :meth:`Drawing.encode` quantises vertices
to a 1/16 grid on [-4, 4] (one byte per coordinate, URL-safe base64), so a drawing of a few strokes is
a short, shareable string; :func:`Drawing.decode` checks such a string before anything uses it.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass

import numpy as np

LIMIT = 4.0  # the drawing box is [-4, 4]^2, the toys' own range
GRID = 16  # vertices are kept on a 1/16 grid: 129 values per axis, one byte each
BREAK = 255  # a byte that can never be a coordinate: separates strokes
MAX_VERTICES_PER_STROKE = 64
MAX_VERTICES = 256  # the encoded form stays under ~700 URL characters
MAX_STROKES = 32
MAX_POINTS = 20_000
MAX_SPREAD = 1.0


def _resample(stroke: np.ndarray, m: int) -> np.ndarray:
    """At most ``m`` vertices evenly spaced by arc length (the ends kept)."""
    if len(stroke) <= m:
        return stroke
    seg = np.linalg.norm(np.diff(stroke, axis=0), axis=1)
    s = np.concatenate([[0.0], np.cumsum(seg)])
    if s[-1] == 0:
        return stroke[:1]
    at = np.linspace(0.0, s[-1], m)
    return np.stack([np.interp(at, s, stroke[:, 0]), np.interp(at, s, stroke[:, 1])], axis=1)


def _quantise(stroke: np.ndarray) -> np.ndarray:
    return np.round((np.clip(stroke, -LIMIT, LIMIT) + LIMIT) * GRID) / GRID - LIMIT


@dataclass(frozen=True)
class Drawing:
    """Strokes, each an (m, 2) float array with m >= 1, inside [-4, 4]^2 (clipped, thinned, on the 1/16 grid)."""

    strokes: tuple[np.ndarray, ...]

    def __post_init__(self) -> None:
        if not isinstance(self.strokes, tuple):
            raise ValueError("drawing: strokes must be a tuple of (m, 2) arrays")
        if len(self.strokes) > MAX_STROKES:
            raise ValueError(f"drawing: at most {MAX_STROKES} strokes, got {len(self.strokes)}")
        clean = []
        for i, stroke in enumerate(self.strokes):
            arr = np.asarray(stroke, dtype=np.float64)
            if arr.ndim != 2 or arr.shape[1] != 2 or len(arr) < 1:
                raise ValueError(f"drawing: stroke {i + 1} must be an (m, 2) array with m >= 1, got shape {arr.shape}")
            if not np.isfinite(arr).all():
                raise ValueError(f"drawing: stroke {i + 1} has NaN or infinite coordinates")
            clean.append(_quantise(_resample(arr, MAX_VERTICES_PER_STROKE)))
        if sum(len(s) for s in clean) > MAX_VERTICES:
            raise ValueError(f"drawing: at most {MAX_VERTICES} vertices in all, got {sum(len(s) for s in clean)}; clear a few strokes")
        object.__setattr__(self, "strokes", tuple(clean))

    @classmethod
    def empty(cls) -> Drawing:
        return cls(())

    def add(self, stroke: np.ndarray) -> Drawing:
        return Drawing(self.strokes + (np.asarray(stroke, dtype=np.float64),))

    def undo(self) -> Drawing:
        return Drawing(self.strokes[:-1])

    @property
    def length(self) -> float:
        return float(sum(np.linalg.norm(np.diff(s, axis=0), axis=1).sum() for s in self.strokes))

    def points(self, n: int, spread: float, seed: int = 0) -> np.ndarray:
        """``n`` float32 points, uniform by arc length over the strokes, jittered by N(0, spread²). Seeded."""
        if not isinstance(n, int) or not 8 <= n <= MAX_POINTS:
            raise ValueError(f"drawing: the number of points must be an integer in [8, {MAX_POINTS}], got {n!r}")
        if not 0 <= spread <= MAX_SPREAD:
            raise ValueError(f"drawing: spread must be in [0, {MAX_SPREAD:g}], got {spread}")
        if not self.strokes:
            raise ValueError("drawing: nothing drawn yet; draw at least one stroke")
        rng = np.random.default_rng(seed)
        segments = [(a, b) for s in self.strokes for a, b in zip(s[:-1], s[1:])]
        lengths = np.array([np.linalg.norm(b - a) for a, b in segments]) if segments else np.zeros(0)
        if lengths.sum() > 0:
            which = rng.choice(len(segments), size=n, p=lengths / lengths.sum())
            u = rng.random(n)[:, None]
            starts = np.array([segments[i][0] for i in which])
            ends = np.array([segments[i][1] for i in which])
            base = starts + u * (ends - starts)
        else:  # only dots: every stroke is a single place
            dots = np.array([s[0] for s in self.strokes])
            base = dots[rng.integers(len(dots), size=n)]
        if spread == 0 and lengths.sum() == 0:
            raise ValueError("drawing: single dots need a spread > 0 to make a distribution")
        pts = base + spread * rng.standard_normal((n, 2))
        return pts.astype(np.float32)

    def encode(self) -> str:
        """A URL-safe text form: one byte per coordinate, BREAK between strokes."""
        out = bytearray()
        for i, stroke in enumerate(self.strokes):
            if i:
                out.append(BREAK)
            for x, y in np.round((stroke + LIMIT) * GRID).astype(int):
                out += bytes((int(x), int(y)))
        return base64.urlsafe_b64encode(bytes(out)).decode("ascii").rstrip("=")

    @classmethod
    def decode(cls, text: str) -> Drawing:
        """The drawing of :meth:`encode`'s string; ValueError naming what is wrong otherwise."""
        if not isinstance(text, str) or len(text) > 4 * (MAX_VERTICES * 2 + MAX_STROKES) // 3 + 4:
            raise ValueError("drawing: the encoded drawing is not a string of a sensible length")
        try:
            raw = base64.b64decode(text + "=" * (-len(text) % 4), altchars=b"-_", validate=True)
        except (binascii.Error, ValueError):
            raise ValueError("drawing: the encoded drawing is not valid URL-safe base64") from None
        strokes, current = [], []
        i = 0
        while i < len(raw):
            if raw[i] == BREAK:
                if not current:
                    raise ValueError("drawing: an empty stroke in the encoded drawing")
                strokes.append(current)
                current = []
                i += 1
                continue
            if i + 1 >= len(raw) or raw[i + 1] == BREAK:
                raise ValueError("drawing: a vertex with one coordinate in the encoded drawing")
            x, y = raw[i], raw[i + 1]
            if x > 2 * LIMIT * GRID or y > 2 * LIMIT * GRID:
                raise ValueError(f"drawing: a coordinate outside [-{LIMIT:g}, {LIMIT:g}] in the encoded drawing")
            current.append((x / GRID - LIMIT, y / GRID - LIMIT))
            i += 2
        if current:
            strokes.append(current)
        return cls(tuple(np.array(s, dtype=np.float64) for s in strokes))
