"""Read-only resources shared by every session: shipped checkpoints, their models and cached samples.

Cached once per process (``st.cache_resource`` / ``st.cache_data``); training never touches these
objects: jobs build their own copies from the payload bytes.
"""

from __future__ import annotations

import hashlib

import numpy as np
import streamlit as st

from gft.core.checkpoints import Checkpoint, checkpoint_from_bytes
from gft.core.models import FlowModel
from gft.data import sample_distribution
from gft.evaluation import probes
from gft.tasks.shipped import shipped_models

PREVIEW_POINTS = 1500
PREVIEW_SEED = 123_457  # the draws of a preset that every page shows under its samples


@st.cache_resource(show_spinner="Loading a shipped model ...")
def shipped_checkpoint(name: str) -> Checkpoint:
    """A shipped checkpoint, loaded once per process. Read-only: training copies its weights."""
    return checkpoint_from_bytes(shipped_payload(name), f"assets/pretrained_{name}.pt")


@st.cache_data(show_spinner=False)
def shipped_payload(name: str) -> bytes:
    models = shipped_models()
    if name not in models:
        raise ValueError(f"no shipped model named {name!r}; available: {', '.join(models) or 'none'}")
    return models[name].read_bytes()


@st.cache_data(show_spinner=False)
def shipped_2d_names() -> list[str]:
    """Shipped models of 2D points (the digits models live in the same folder)."""
    return [n for n in shipped_models() if shipped_checkpoint(n).model.config.data_shape == (2,)]


@st.cache_resource(show_spinner=False, max_entries=16)
def payload_model(key: str, _payload: bytes) -> FlowModel:
    """The model of a checkpoint payload, for inference in the script thread (read-only)."""
    return checkpoint_from_bytes(_payload, key).model


@st.cache_data(show_spinner="Sampling the model ...", max_entries=32)
def model_cloud(key: str, _payload: bytes, n: int = PREVIEW_POINTS, seed: int = 0) -> np.ndarray:
    return probes.model_samples(payload_model(key, _payload), n, seed)


@st.cache_data(show_spinner="Integrating trajectories ...", max_entries=32)
def model_paths(key: str, _payload: bytes, n: int = 400, steps: int = 40, seed: int = 0) -> np.ndarray:
    return probes.model_trajectories(payload_model(key, _payload), n, seed, steps)


@st.cache_data(show_spinner=False, max_entries=64)
def preset_points(name: str, n: int = PREVIEW_POINTS, seed: int = PREVIEW_SEED) -> np.ndarray:
    return sample_distribution(name, n, seed).numpy()


def payload_key(payload: bytes, prefix: str = "session") -> str:
    return f"{prefix}:{hashlib.sha1(payload).hexdigest()[:12]}"
