"""User image sets (``images:PATH``, app uploads): validated at the boundary, scaled to [-1, 1], split once.

A spec reads ``images:PATH[#X[,Y]][:CLASSES]``:

* ``PATH`` ends in ``.npy`` (one array of images) or ``.npz`` (named arrays);
* ``#X`` names the images' array in an ``.npz`` (optional when it holds exactly one array), ``#X,Y``
  also a labels array: N integers 0-999, one per image;
* ``:CLASSES`` (needs labels) keeps those labels, written like digits: ``3``, ``0-4``, ``1,3,5``.

Images are ``N x H x W`` (grey), ``N x C x H x W`` or ``N x H x W x C`` (C = 1 or 3), 8 <= H, W <= 64,
uint8 (or integers within 0-255) or float, finite, at least 8 of them. The model sees ``N x C x H x W``
float32 in [-1, 1]; :class:`ImageScaling` records how (layout and value range) so samples go back to
the file's own layout and range. The range is 0-255 for integer files; for float files [0, 1] or
[-1, 1] when the values lie within it, else their observed min and max.

Every image belongs once and for all to the train or held-out part (30 % held out, per label when
there are labels, seeded by ``SPLIT_SEED``), computed over the whole file before classes are chosen:
two class subsets of one file never train on the other's held-out images.
"""

from __future__ import annotations

import functools
import io
import re
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from gft.data.classes import parse_class_list
from gft.data.digits import HELDOUT_FRACTION
from gft.data.files import MAX_ABS_VALUE, MIN_FILE_ROWS

PREFIX = "images:"
LAYOUTS = ("NHW", "NCHW", "NHWC")
CHANNELS = (1, 3)
MIN_SIDE, MAX_SIDE = 8, 64  # what gft.core.convnet takes
MAX_IMAGES = 100_000  # 100k 64x64x3 float32 images are 4.9 GB: the most one process should hold
MAX_LABEL = 999
SPLIT_SEED = 20_250_113
_KEYS = re.compile(r"^([A-Za-z_][\w.-]*)(?:,([A-Za-z_][\w.-]*))?$")


@dataclass(frozen=True)
class ImageFileSpec:
    """A parsed ``images:`` spec."""

    path: str
    images_key: str | None = None
    labels_key: str | None = None
    classes: tuple[int, ...] | None = None

    @property
    def text(self) -> str:
        keys = "" if self.images_key is None else "#" + ",".join(k for k in (self.images_key, self.labels_key) if k)
        classes = "" if self.classes is None else ":" + ",".join(map(str, self.classes))
        return f"{PREFIX}{self.path}{keys}{classes}"


def parse_image_spec(text: str) -> ImageFileSpec:
    """Parse ``images:PATH[#X[,Y]][:CLASSES]``; a ValueError says what is wrong."""
    if not isinstance(text, str) or not text.startswith(PREFIX):
        raise ValueError(f"image spec must start with {PREFIX!r}, got {text!r}")
    body = text[len(PREFIX):]
    path, _, keys = body.partition("#")
    classes = None
    if ":" in keys:
        keys, _, class_part = keys.partition(":")
        if not class_part:
            raise ValueError(f"{text!r}: no classes after ':'; write e.g. #x,y:0-4")
        classes = parse_class_list(class_part.replace(" ", ""), text, MAX_LABEL)
    suffix = Path(path).suffix.lower()
    if suffix not in (".npy", ".npz"):
        raise ValueError(f"{text!r}: image files must be .npy or .npz, got {suffix or 'no extension'!r}")
    images_key = labels_key = None
    if keys:
        m = _KEYS.match(keys)
        if m is None:
            raise ValueError(f"{text!r}: after '#' name the images array and optionally the labels array: #x or #x,y")
        images_key, labels_key = m.group(1), m.group(2)
        if suffix == ".npy":
            raise ValueError(f"{text!r}: a .npy file holds one array; array names (and labels) need an .npz")
    if classes is not None and labels_key is None:
        raise ValueError(f"{text!r}: classes need labels; name them after the images: #x,y:0-4")
    return ImageFileSpec(path, images_key, labels_key, classes)


# ---- scaling ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ImageScaling:
    """How a file's images map to model space ((N, C, H, W) in [-1, 1]) and back: what checkpoints record."""

    layout: str  # the file's axes: NHW, NCHW or NHWC
    low: float  # the value that maps to -1
    high: float  # the value that maps to +1
    integer: bool  # integer files: outputs are rounded to whole values
    shape: tuple[int, int, int]  # (C, H, W) in model space

    def __post_init__(self) -> None:
        if self.layout not in LAYOUTS:
            raise ValueError(f"layout must be one of {LAYOUTS}, got {self.layout!r}")
        if not (np.isfinite(self.low) and np.isfinite(self.high) and self.high > self.low):
            raise ValueError(f"the value range must be finite with high > low, got [{self.low}, {self.high}]")
        object.__setattr__(self, "shape", tuple(int(s) for s in self.shape))
        c, h, w = self.shape
        if c not in CHANNELS or not (MIN_SIDE <= h <= MAX_SIDE and MIN_SIDE <= w <= MAX_SIDE):
            raise ValueError(f"shape must be (C, H, W) with C in {CHANNELS} and {MIN_SIDE} <= H, W <= {MAX_SIDE}, got {self.shape}")
        if self.layout == "NHW" and c != 1:
            raise ValueError("layout NHW holds one channel")

    def to_model(self, arr: np.ndarray) -> torch.Tensor:
        """File images (N, ...) in the file's layout -> float32 (N, C, H, W) in [-1, 1]."""
        x = torch.from_numpy(np.ascontiguousarray(arr, dtype=np.float64))
        if self.layout == "NHW":
            x = x[:, None]
        elif self.layout == "NHWC":
            x = x.permute(0, 3, 1, 2)
        return ((x - self.low) / (self.high - self.low) * 2.0 - 1.0).float().contiguous()

    def to_file(self, x: torch.Tensor) -> torch.Tensor:
        """Model images (..., C, H, W) -> the file's layout and range (clamped; rounded for integer files)."""
        if tuple(x.shape[-3:]) != self.shape:
            raise ValueError(f"expected images of shape (..., {', '.join(map(str, self.shape))}), got {tuple(x.shape)}")
        y = self.low + (x.double().clamp(-1.0, 1.0) + 1.0) / 2.0 * (self.high - self.low)
        if self.integer:
            y = y.round()
        if self.layout == "NHW":
            y = y.squeeze(-3)
        elif self.layout == "NHWC":
            y = y.movedim(-3, -1)
        return y.float().contiguous()

    def to_dict(self) -> dict:
        d = asdict(self)
        d["shape"] = list(self.shape)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "ImageScaling":
        try:
            return cls(layout=d["layout"], low=float(d["low"]), high=float(d["high"]), integer=bool(d["integer"]), shape=tuple(d["shape"]))
        except (KeyError, TypeError) as exc:
            raise ValueError(f"an image scaling record needs layout, low, high, integer and shape ({exc})") from None


# ---- validation -------------------------------------------------------------------------------------
def _layout(shape: tuple[int, ...], source: str) -> tuple[str, tuple[int, int, int]]:
    if len(shape) == 3:
        return "NHW", (1, shape[1], shape[2])
    if len(shape) == 4 and shape[1] in CHANNELS and shape[3] not in CHANNELS:
        return "NCHW", (shape[1], shape[2], shape[3])
    if len(shape) == 4 and shape[3] in CHANNELS:
        return "NHWC", (shape[3], shape[1], shape[2])
    raise ValueError(f"{source}: expected N x H x W, N x C x H x W or N x H x W x C images with C = 1 or 3, got shape {shape}")


def _value_range(arr: np.ndarray, source: str) -> tuple[float, float, bool]:
    if arr.dtype == np.bool_ or not np.issubdtype(arr.dtype, np.number) or np.iscomplexobj(arr):
        raise ValueError(f"{source}: images must be uint8 or float, got dtype {arr.dtype}")
    lo, hi = float(arr.min()), float(arr.max())
    if np.issubdtype(arr.dtype, np.integer):
        if lo < 0 or hi > 255:
            raise ValueError(f"{source}: integer images must lie in 0-255, got values {lo:g} to {hi:g}")
        low, high, integer = 0.0, 255.0, True
    else:
        if not np.isfinite(arr).all():
            bad = int((~np.isfinite(arr.reshape(len(arr), -1))).any(axis=1).sum())
            raise ValueError(f"{source}: {bad} image(s) hold NaN or infinite values")
        if max(abs(lo), abs(hi)) > MAX_ABS_VALUE:
            raise ValueError(f"{source}: values must lie within +-{MAX_ABS_VALUE:g}, got {lo:g} to {hi:g}")
        if lo >= 0 and hi <= 1:
            low, high = 0.0, 1.0
        elif lo >= -1 and hi <= 1:
            low, high = -1.0, 1.0
        else:
            low, high = lo, hi
        integer = False
    if lo == hi:
        raise ValueError(f"{source}: every pixel holds {lo:g}; a distribution of images needs contrast")
    return low, high, integer


def validate_images(arr: np.ndarray, source: str) -> tuple[torch.Tensor, ImageScaling]:
    """Check an array of user images; return them in model space and the scaling, or raise a ValueError."""
    arr = np.asarray(arr)
    layout, shape = _layout(arr.shape, source)
    c, h, w = shape
    if not (MIN_SIDE <= h <= MAX_SIDE and MIN_SIDE <= w <= MAX_SIDE):
        raise ValueError(f"{source}: images must be {MIN_SIDE} to {MAX_SIDE} pixels a side, got {h} x {w}")
    if not MIN_FILE_ROWS <= len(arr) <= MAX_IMAGES:
        raise ValueError(f"{source}: need {MIN_FILE_ROWS} to {MAX_IMAGES} images, got {len(arr)}")
    low, high, integer = _value_range(arr, source)
    scaling = ImageScaling(layout, low, high, integer, shape)
    return scaling.to_model(arr), scaling


def validate_labels(labels: np.ndarray, n: int, source: str) -> torch.Tensor:
    """N integer labels in 0-999 (integral floats pass), as int64."""
    labels = np.asarray(labels)
    if labels.shape != (n,):
        raise ValueError(f"{source}: labels must be one integer per image, shape ({n},), got {labels.shape}")
    if labels.dtype == np.bool_ or not np.issubdtype(labels.dtype, np.number):
        raise ValueError(f"{source}: labels must be integers, got dtype {labels.dtype}")
    if not np.isfinite(labels).all() or not np.array_equal(labels, np.round(labels)):
        raise ValueError(f"{source}: labels must be whole numbers")
    if labels.min() < 0 or labels.max() > MAX_LABEL:
        raise ValueError(f"{source}: labels must lie in 0-{MAX_LABEL}, got {labels.min():g} to {labels.max():g}")
    return torch.from_numpy(labels.astype(np.int64))


# ---- reading ----------------------------------------------------------------------------------------
def _pick(arrays: dict[str, np.ndarray], key: str | None, source: str, what: str) -> np.ndarray:
    if key is None:
        if len(arrays) != 1:
            raise ValueError(f"{source}: holds arrays {sorted(arrays)}; name the images one: images:{source}#NAME")
        return next(iter(arrays.values()))
    if key not in arrays:
        raise ValueError(f"{source}: no {what} array {key!r}; it holds {sorted(arrays)}")
    return arrays[key]


def _arrays(stream, suffix: str, source: str) -> dict[str, np.ndarray]:
    try:
        loaded = np.load(stream, allow_pickle=False)
        if suffix == ".npz":
            if not isinstance(loaded, np.lib.npyio.NpzFile):
                raise ValueError("not an .npz archive")
            with loaded:
                return {k: loaded[k] for k in loaded.files}
        if not isinstance(loaded, np.ndarray):
            raise ValueError("not a .npy array")
        return {"array": loaded}
    except (ValueError, OSError, EOFError) as exc:  # numpy raises ValueError for object arrays too
        raise ValueError(f"{source}: not a valid {suffix} file ({' '.join(str(exc).split())[:120]})") from None


@dataclass(frozen=True)
class ImageSet:
    """A file's images in model space (N, C, H, W), its labels (or None) and its scaling."""

    images: torch.Tensor
    labels: torch.Tensor | None
    scaling: ImageScaling
    source: str

    def __len__(self) -> int:
        return len(self.images)


def image_set_from_arrays(arrays: dict[str, np.ndarray], spec: ImageFileSpec, source: str) -> ImageSet:
    """Validate the spec's arrays of a loaded file or upload: the one check every path goes through."""
    images, scaling = validate_images(_pick(arrays, spec.images_key, source, "images"), source)
    labels = None
    if spec.labels_key is not None:
        labels = validate_labels(_pick(arrays, spec.labels_key, source, "labels"), len(images), source)
    return ImageSet(images, labels, scaling, source)


def image_set_from_bytes(data: bytes, filename: str, spec: ImageFileSpec) -> ImageSet:
    """An uploaded ``.npy``/``.npz`` with the same checks as files (``spec`` names its arrays)."""
    suffix = Path(filename).suffix.lower()
    if suffix not in (".npy", ".npz"):
        raise ValueError(f"{filename}: image uploads must be .npy or .npz, got {suffix or 'no extension'!r}")
    return image_set_from_arrays(_arrays(io.BytesIO(data), suffix, filename), spec, filename)


def load_image_set(spec: ImageFileSpec) -> ImageSet:
    """Read and validate the spec's file (cached while the file is unchanged)."""
    path = Path(spec.path)
    if not path.is_file():
        raise ValueError(f"image file not found: {path}")
    stat = path.stat()
    return _load_cached(str(path.resolve()), stat.st_mtime_ns, stat.st_size, spec.images_key, spec.labels_key, spec.path)


@functools.lru_cache(maxsize=4)
def _load_cached(resolved: str, mtime_ns: int, size: int, images_key: str | None, labels_key: str | None, shown: str) -> ImageSet:
    # mtime and size are part of the key: a file rewritten in place is read again.
    with open(resolved, "rb") as f:
        arrays = _arrays(f, Path(resolved).suffix.lower(), shown)
    return image_set_from_arrays(arrays, ImageFileSpec(shown, images_key, labels_key), shown)


# ---- the split --------------------------------------------------------------------------------------
def split_indices(labels: torch.Tensor | None, n: int) -> tuple[np.ndarray, np.ndarray]:
    """The fixed (train, held-out) indices of a file: ``HELDOUT_FRACTION`` held out, per label when labelled."""
    rng = np.random.default_rng(SPLIT_SEED)
    groups = [np.arange(n)] if labels is None else [np.flatnonzero(labels.numpy() == c) for c in np.unique(labels.numpy())]
    train, held = [], []
    for idx in groups:
        idx = rng.permutation(idx)
        n_held = int(round(HELDOUT_FRACTION * len(idx)))
        held.append(idx[:n_held])
        train.append(idx[n_held:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(held))


@dataclass(frozen=True)
class ImagePart:
    """The train or held-out images of a spec (model space) and their labels (or None)."""

    images: torch.Tensor
    labels: torch.Tensor | None

    def __len__(self) -> int:
        return len(self.images)


def image_parts(data: ImageSet, spec: ImageFileSpec) -> tuple[ImagePart, ImagePart]:
    """(train, held-out) of the spec's classes; each part holds at least 2 images."""
    train, held = split_indices(data.labels, len(data))
    if spec.classes is not None:
        present = set(data.labels.unique().tolist())
        missing = [c for c in spec.classes if c not in present]
        if missing:
            raise ValueError(f"{data.source}: no images of class(es) {missing}; its labels are {sorted(present)}")
        keep = np.isin(data.labels.numpy(), spec.classes)
        train, held = train[keep[train]], held[keep[held]]
    if len(train) < 2 or len(held) < 2:
        raise ValueError(f"{data.source}: {len(train)} train and {len(held)} held-out images; need at least 2 of each (use more images)")

    def part(idx: np.ndarray) -> ImagePart:
        t = torch.from_numpy(idx)
        return ImagePart(data.images[t], None if data.labels is None else data.labels[t])

    return part(train), part(held)
