"""Device selection: ``auto`` picks CUDA when present."""

from __future__ import annotations

import copy

import torch

DEVICE_CHOICES = ("auto", "cpu", "cuda")


def resolve_device(name: str = "auto") -> torch.device:
    """Turn ``auto|cpu|cuda`` into a torch device; asking for CUDA without one is an error."""
    if name not in DEVICE_CHOICES:
        raise ValueError(f"device must be one of {DEVICE_CHOICES}, got {name!r}")
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda' was requested but no CUDA GPU is available (use --device cpu or auto)")
    return torch.device(name)


def describe_device(device: torch.device) -> str:
    """Human-readable name: the GPU model or 'CPU (N threads)'."""
    if device.type == "cuda":
        return f"GPU: {torch.cuda.get_device_name(device)}"
    n = torch.get_num_threads()
    return f"CPU ({n} thread{'s' if n != 1 else ''})"


def make_generator(seed: int, device: torch.device) -> torch.Generator:
    """A seeded generator on ``device``: every random draw in gft goes through one of these."""
    if not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    return torch.Generator(device=device).manual_seed(seed)


def model_device(model: torch.nn.Module) -> torch.device:
    """Where a model's weights live (CPU for a model without any)."""
    for tensor in (*model.parameters(), *model.buffers()):
        return tensor.device
    return torch.device("cpu")


def on_device(model: torch.nn.Module, device: torch.device | str) -> torch.nn.Module:
    """``model`` itself when it already lives on ``device``, else a copy there: the caller's model never moves."""
    device = torch.device(device)
    here = model_device(model)
    if here.type == device.type and (device.index is None or here.index == device.index):
        return model
    return copy.deepcopy(model).to(device)
