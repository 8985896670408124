"""Shipped pretrained 2D models (``assets/pretrained_<name>.pt``): list and load them.

The files are produced by ``scripts/make_assets.py`` (seeded) and committed, so the explorer opens
mid-story: a pretrained model is there before anyone trains. Streamlit-free; the app caches
:func:`load_shipped` with ``st.cache_resource`` and must treat the model as read-only.
"""

from __future__ import annotations

from pathlib import Path

from gft.core.checkpoints import Checkpoint, load_checkpoint

ASSET_DIR = Path(__file__).resolve().parents[2] / "assets"
PREFIX = "pretrained_"
# What scripts/make_assets.py builds: a source distribution per name, seeded, MLP 128 x 3.
SHIPPED_2D = ("moons", "gaussian", "8gaussians", "circles")


def shipped_models(directory: Path | None = None) -> dict[str, Path]:
    """Name -> checkpoint path for every ``pretrained_<name>.pt`` in the asset folder, sorted by name."""
    folder = ASSET_DIR if directory is None else Path(directory)
    if not folder.is_dir():
        return {}
    return {p.stem[len(PREFIX):]: p for p in sorted(folder.glob(f"{PREFIX}*.pt"))}


def asset_path(name: str) -> Path:
    """Where the shipped model ``name`` lives (it may not exist yet)."""
    return ASSET_DIR / f"{PREFIX}{name}.pt"


def load_shipped(name: str, directory: Path | None = None) -> Checkpoint:
    """Load a shipped pretrained model; an unknown name is a ValueError listing the available ones."""
    models = shipped_models(directory)
    if name not in models:
        available = ", ".join(models) or "none (run scripts/make_assets.py)"
        raise ValueError(f"no shipped model named {name!r}; available: {available}")
    return load_checkpoint(models[name])
