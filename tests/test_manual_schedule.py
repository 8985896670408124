"""Manual annealing: τ set while training runs applies from that step on, and the record replays exactly
as a piecewise schedule."""

from __future__ import annotations

import pytest
import torch

from gft.core.manual_schedule import ManualSchedule
from gft.core.models import ModelConfig
from gft.core.schedules import parse_schedule
from gft.core.training import TrainConfig, Trainer
from gft.data import sample_distribution


def test_changes_apply_forward_and_the_record_replays_exactly():
    m = ManualSchedule(1000, 4.0)
    m.set_tau(2.0, 137)
    m.set_tau(0.5, 400)
    m.set_tau(0.7, 400)  # a second move at the same step replaces the first
    m.set_tau(9.0, 100)  # the past is what it was: applies from the latest change on
    m.set_tau(0.0, 800)
    assert m.changes() == [(0, 4.0), (137, 2.0), (400, 9.0), (800, 0.0)]
    assert [m.tau(s) for s in (0, 136, 137, 399, 400, 799, 800, 999)] == [4, 4, 2, 2, 9, 9, 0, 0]
    replay = parse_schedule(m.spec(), 1000, 0.0)
    assert [replay.tau(s) for s in range(1000)] == pytest.approx([m.tau(s) for s in range(1000)], abs=1e-9)
    assert m.lam(0) == pytest.approx(0.8)


def test_a_knob_never_moved_is_a_constant_and_bad_values_are_refused():
    m = ManualSchedule(50, 1.5)
    assert parse_schedule(m.spec(), 50, 0.0).tau(49) == 1.5
    with pytest.raises(ValueError, match="tau"):
        m.set_tau(-1.0, 3)
    with pytest.raises(ValueError, match="total_steps"):
        ManualSchedule(0, 1.0)


def test_the_trainer_follows_the_knob():
    config = TrainConfig(method="gft", steps=30, batch=32, lr=1e-3, seed=0, device="cpu", callback_every=10, schedule="constant:4")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        from gft.core.models import MLPFlow

        base = MLPFlow(ModelConfig(width=16, depth=2))
    trainer = Trainer(sample_distribution("moons", 256, seed=0), config, pretrained=base)
    knob = ManualSchedule(30, 4.0)
    trainer.schedule = knob
    snaps = []
    trainer.run(max_steps=10, callback=snaps.append)
    knob.set_tau(0.0, trainer.step)
    trainer.run(callback=snaps.append)
    assert [round(s.tau, 3) for s in snaps] == [4.0, 4.0, 0.0, 0.0]  # rows at steps 0, 10, 20, 30
