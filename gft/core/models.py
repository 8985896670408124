"""Building flow networks by name: the registry of architectures and seeded construction.

``ModelConfig`` and ``FlowModel`` are re-exported here: they are what a caller of this layer needs.
"""

from __future__ import annotations

import threading
from typing import Callable

import torch

from gft.core.convnet import ConvFlow
from gft.core.flow_model import FlowModel, ModelConfig, frozen_copy
from gft.core.mlp import MLPFlow

__all__ = ["MODEL_BUILDERS", "ConvFlow", "FlowModel", "MLPFlow", "ModelConfig", "build_model", "build_seeded", "frozen_copy"]

MODEL_BUILDERS: dict[str, Callable[[ModelConfig], FlowModel]] = {"mlp": MLPFlow, "convnet": ConvFlow}


def build_model(config: ModelConfig) -> FlowModel:
    """Instantiate the architecture a config names."""
    return MODEL_BUILDERS[config.kind](config)


_SEEDED_BUILD = threading.Lock()


def build_seeded(config: ModelConfig, seed: int) -> FlowModel:
    """Fresh weights drawn from ``seed``; torch's initialisers use the global RNG, so builds are
    serialised under a lock (two app sessions starting at once must not reseed each other)."""
    with _SEEDED_BUILD, torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return build_model(config)
