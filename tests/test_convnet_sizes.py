"""The convnet at every image size it accepts, and the 8x8 digits model exactly as it was before sizes.

The reference numbers below were computed with the two-level 8x8-only convnet (before it took other
sizes): seeded weights and outputs of the 8x8 model, and outputs of the shipped digits checkpoints.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from gft.core.checkpoints import load_checkpoint
from gft.core.convnet import levels_for
from gft.core.models import ModelConfig, build_seeded

ROOT = Path(__file__).resolve().parents[1]
X = torch.randn(4, 1, 8, 8, generator=torch.Generator().manual_seed(0))
T = torch.tensor([0.0, 0.3, 0.7, 1.0])


@pytest.mark.parametrize("upsample, out_sum, out_abs", [(1, -571.4244403801858, 1403.1012695468962), (2, -751.5238043889403, 1019.7074133530259)])
def test_the_8x8_model_keeps_its_seeded_weights_and_outputs(upsample, out_sum, out_abs):
    model = build_seeded(ModelConfig(kind="convnet", data_shape=(1, 8, 8), width=16, depth=1, upsample=upsample), 0)
    assert math.isclose(sum(float(p.detach().double().sum()) for p in model.parameters()), 147.5740966224016, rel_tol=1e-12)
    assert not any(k.startswith("inner") for k in model.state_dict())
    torch.nn.init.normal_(model.out.weight, generator=torch.Generator().manual_seed(1))  # a zero head would hide the trunk
    with torch.no_grad():
        v = model(X, T).double()
    assert math.isclose(float(v.sum()), out_sum, rel_tol=1e-6) and math.isclose(float(v.abs().sum()), out_abs, rel_tol=1e-6)


@pytest.mark.parametrize("name, out_sum, first", [
    ("0-4", -143.7923126220703, [0.16404469311237335, 0.390000581741333, -0.014018137939274311, 0.9614010453224182]),
    ("0-9", -149.4373779296875, [0.197872593998909, 0.2716059386730194, -0.07758758962154388, 0.9161139726638794]),
])  # fmt: skip
def test_shipped_digit_checkpoints_load_and_give_the_same_velocities(name, out_sum, first):
    path = ROOT / "assets" / f"digits_pretrained_{name}.pt"
    if not path.is_file():
        pytest.skip("run scripts/make_digits_assets.py first")
    with torch.no_grad():
        v = load_checkpoint(path).model(X, T)
    assert math.isclose(float(v.sum()), out_sum, rel_tol=1e-5, abs_tol=1e-4)
    torch.testing.assert_close(v[0, 0, 0, :4], torch.tensor(first), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("shape, levels", [((1, 8, 8), 2), ((1, 12, 15), 2), ((1, 28, 28), 3), ((3, 32, 32), 3), ((3, 64, 64), 3), ((1, 9, 27), 2), ((3, 17, 23), 3)])
def test_every_accepted_size_maps_back_to_its_own_shape(shape, levels):
    assert levels_for(shape) == levels
    model = build_seeded(ModelConfig(kind="convnet", data_shape=shape, width=8, depth=1, score_head=True), 0)
    heads = model.heads(torch.randn(2, *shape), torch.rand(2))
    assert heads["velocity"].shape == heads["score"].shape == (2, *shape)
    assert any(k.startswith("inner") for k in model.state_dict()) == (levels == 3)


@pytest.mark.parametrize("shape", [(2, 8, 8), (1, 7, 8), (1, 8, 65), (8, 8), (1, 1, 8, 8)])
def test_sizes_outside_the_range_are_refused(shape):
    with pytest.raises(ValueError, match="data_shape must be"):
        build_seeded(ModelConfig(kind="convnet", data_shape=shape, width=8, depth=1), 0)
