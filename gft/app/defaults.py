"""Page defaults by device: on a GPU the explorer starts with more particles and more steps.

A pure function of the device string, so it is tested without a GPU; app.py's badge says which device
the defaults were picked for and why. A URL parameter or the user's own value always wins (these are
only the widgets' starting values).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PageDefaults:
    """Starting values of the run widgets, and one sentence on why they are what they are."""

    device: str
    particles: int  # animated particles (the browser's budget is about 2,000 x 100 frames)
    finetune_steps: int
    pretrain_steps: int
    chain_steps: int  # per stage
    reason: str


CPU = PageDefaults("cpu", particles=500, finetune_steps=600, pretrain_steps=2000, chain_steps=300,
                   reason="CPU defaults: 500 particles, 600 fine-tuning steps (about 10 s on 2 cores).")
GPU = PageDefaults("cuda", particles=2000, finetune_steps=2000, pretrain_steps=6000, chain_steps=1000,
                   reason="GPU found: defaults raised to 2,000 particles (the browser's smooth limit) and about 3x the "
                          "steps, which train there in the time the CPU defaults take on a CPU.")


def defaults_for(device: str) -> PageDefaults:
    """The defaults for a torch device string (``cpu``, ``cuda``, ``cuda:1``, ``mps``)."""
    if not isinstance(device, str) or not device:
        raise ValueError(f"device must be a non-empty string such as 'cpu' or 'cuda:0', got {device!r}")
    kind = device.split(":")[0]
    if kind == "cuda":
        return GPU
    if kind in ("cpu", "mps"):  # Apple's GPU runs these tiny models no faster than the CPU: keep CPU sizes
        return CPU
    raise ValueError(f"device must be cpu, cuda[:N] or mps, got {device!r}")
