"""GPU-aware page defaults, picked from a device string (no GPU needed to test them)."""

from __future__ import annotations

import pytest

from gft.app.defaults import CPU, GPU, defaults_for


@pytest.mark.parametrize("device", ["cuda", "cuda:0", "cuda:3"])
def test_a_gpu_gets_more_particles_and_steps_and_says_why(device):
    d = defaults_for(device)
    assert d is GPU and d.particles > CPU.particles and d.finetune_steps > CPU.finetune_steps
    assert d.pretrain_steps > CPU.pretrain_steps and d.chain_steps > CPU.chain_steps
    assert d.particles <= 2000  # the page's maximum and the browser's animation budget
    assert "GPU" in d.reason


@pytest.mark.parametrize("device", ["cpu", "mps"])
def test_cpu_and_mps_keep_the_small_defaults(device):
    assert defaults_for(device) is CPU and "CPU" in CPU.reason


@pytest.mark.parametrize("device", ["", "tpu", None, "gpu"])
def test_unknown_devices_are_refused(device):
    with pytest.raises(ValueError, match="device"):
        defaults_for(device)
