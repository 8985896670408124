"""Chains of shifts driven like one trainer: steps count across stages, every target is measured at
each evaluation (forgetting shows), chunked runs equal one run, and Stop stops."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from gft.core.checkpoints import load_checkpoint
from gft.core.training import TrainConfig
from gft.tasks.chains import ChainTrainer, stage_metric
from gft.tasks.runs import Monitor
from tests.conftest import ROOT

TARGETS = ("8gaussians", "circles", "checkerboard")
CONFIG = TrainConfig(method="gft", steps=20, batch=64, lr=2e-3, seed=0, schedule="stages:4,0.5,2", device="cpu", callback_every=10)
MONITOR = Monitor(eval_every=10, eval_points=200, particles=16, trajectory_steps=4)


@pytest.fixture(scope="module")
def moons():
    return load_checkpoint(ROOT / "assets" / "pretrained_moons.pt").model


def test_a_chain_counts_steps_across_stages_and_measures_every_target(moons):
    chain = ChainTrainer(moons, TARGETS, CONFIG, monitor=MONITOR)
    snaps = []
    result = chain.run(callback=snaps.append)
    assert chain.done and result.steps == 60 and chain.config.steps == 60
    assert [s.step for s in snaps] == [0, 10, 20, 20, 30, 40, 40, 50, 60]  # each stage starts with its own step 0
    assert [s.values["stage"] for s in snaps] == [1, 1, 1, 2, 2, 2, 3, 3, 3]
    for snap in snaps:
        assert all(stage_metric(j) in snap.values for j in range(3))
        assert snap.values["w2"] == snap.values[stage_metric(snap.values["stage"] - 1)]
        assert snap.trajectory.shape == (5, 16, 2)
    # GFT restarts its anneal on each new target: tau is high again at each stage's start
    assert snaps[3].tau == pytest.approx(4.0) and snaps[2].tau == 0
    assert [r["step"] for r in chain.history] == [s.step for s in snaps]
    assert chain.result_model is not moons


def test_chunked_chain_equals_one_run(moons):
    whole = ChainTrainer(moons, TARGETS[:2], CONFIG)
    whole.run()
    parts = ChainTrainer(moons, TARGETS[:2], CONFIG)
    while not parts.done:
        parts.run(max_steps=7)
    x = np.random.default_rng(0).normal(size=(10, 2)).astype(np.float32)
    import torch

    t = torch.full((10,), 0.5)
    assert torch.equal(whole.result_model(torch.from_numpy(x), t), parts.result_model(torch.from_numpy(x), t))


def test_stop_and_bad_chains(moons):
    stop = threading.Event()
    chain = ChainTrainer(moons, TARGETS, CONFIG)
    chain.run(max_steps=25)
    stop.set()
    res = chain.run(stop_event=stop)
    assert res.stopped and res.steps == 25 and chain.stage == 1
    with pytest.raises(ValueError, match="method"):
        ChainTrainer(moons, TARGETS, TrainConfig(method="scratch", steps=10))
    with pytest.raises(ValueError, match="2 to 10 targets"):
        ChainTrainer(moons, TARGETS[:1], CONFIG)
