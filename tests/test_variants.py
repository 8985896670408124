"""Method variants: a stop temperature, validation-chosen checkpoints, warm-up, an EMA of the weights and
L2-SP (weight anchoring), plus the unbiased energy distance that validation uses."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from gft.core.models import ModelConfig, build_seeded
from gft.core.schedules import lambda_of_tau, parse_schedule
from gft.core.training import TrainConfig, Trainer, train
from gft.data import sample_distribution
from gft.evaluation.metrics import energy_distance_unbiased
from gft.evaluation.monitors import BestWeights
from gft.tasks.runs import VALIDATION, Monitor, best_point, best_weights, make_trainer, split_validation, task_for

SMALL = ModelConfig(width=32, depth=2)


def _params(model: torch.nn.Module) -> torch.Tensor:
    return torch.cat([p.detach().flatten() for p in model.parameters()])


def _config(**overrides) -> TrainConfig:
    base = dict(method="gft", steps=20, batch=64, lr=2e-3, seed=0, device="cpu", callback_every=10)
    base.update(overrides)
    return TrainConfig(**base)


@pytest.fixture(scope="module")
def pre():
    return build_seeded(SMALL, 3)


# ---------------------------------------------------------------- stop temperature


@pytest.mark.parametrize("spec", ["linear:8", "cosine:8", "exponential:8,5", "stages:8,0.5,4", "piecewise:0/8,0.5/2,1/0"])
def test_the_stop_temperature_floors_the_anneal_and_is_held_at_the_end(spec):
    plain = parse_schedule(spec, 1000, 0.2)
    stopped = parse_schedule(spec, 1000, 0.2, tau_end=0.5)
    taus = np.array([stopped.tau(s) for s in range(1000)])
    assert taus.min() == pytest.approx(0.5) and stopped.tau(999) == 0.5 and plain.tau(999) == 0.0
    # Where the plain anneal is above the floor nothing changes; below it the floor holds.
    for s in range(0, 1000, 37):
        assert stopped.tau(s) == pytest.approx(max(plain.tau(s), 0.5))
    assert stopped.lam(999) == pytest.approx(lambda_of_tau(0.5)) == pytest.approx(1 / 3)


def test_the_stop_temperature_is_validated():
    with pytest.raises(ValueError, match="below the schedule's starting tau"):
        parse_schedule("linear:2", 100, tau_end=2.0)
    with pytest.raises(ValueError, match="tau_end must be in"):
        parse_schedule("linear:2", 100, tau_end=-1.0)
    with pytest.raises(ValueError, match="'gft' only"):
        _config(method="standard", tau_end=0.5)
    assert _config(tau_end=0.5, schedule="stages:10,0.5,5").make_schedule().tau(19) == 0.5


# ---------------------------------------------------------------- warm-up, EMA, L2-SP


def test_warmup_ramps_the_learning_rate_linearly(pre):
    trainer = Trainer(sample_distribution("moons", 500, 0), _config(method="standard", warmup=4, lr=1e-3), pretrained=pre)
    seen = []
    for _ in range(6):
        trainer.train_step()
        seen.append(trainer.optimizer.param_groups[0]["lr"])
    trainer.close()
    assert seen == pytest.approx([2.5e-4, 5e-4, 7.5e-4, 1e-3, 1e-3, 1e-3])
    with pytest.raises(ValueError, match="warmup"):
        _config(warmup=21)


def test_ema_is_the_moving_average_of_the_weights_and_what_the_run_yields(pre):
    decay = 0.9
    trainer = Trainer(sample_distribution("moons", 500, 0), _config(method="standard", ema=decay, steps=3), pretrained=pre)
    expected = None
    for _ in range(3):
        trainer.train_step()
        now = _params(trainer.model).clone()
        expected = now if expected is None else decay * expected + (1 - decay) * now  # first update copies
    trainer.close()
    assert torch.allclose(_params(trainer.result_model), expected, atol=1e-6)
    assert not torch.allclose(_params(trainer.result_model), _params(trainer.model))
    model, _ = train(sample_distribution("moons", 500, 0), _config(method="standard", ema=decay, steps=3), pretrained=pre)
    assert torch.equal(_params(model), _params(trainer.result_model))  # train() returns the EMA
    with pytest.raises(ValueError, match="ema"):
        _config(ema=1.0)


def test_l2sp_keeps_the_weights_near_the_pretrained_ones(pre):
    data = sample_distribution("8gaussians", 2000, 0)
    far = {}
    for method, weight in (("standard", 0.0), ("l2sp", 1.0)):
        model, _ = train(data, _config(method=method, anchor_weight=weight, steps=60, lr=1e-2), pretrained=pre)
        far[method] = float((_params(model) - _params(pre)).norm())
    # A strong anchor: the step the loss gradient asks for is mostly cancelled by the pull back.
    assert far["l2sp"] < 0.5 * far["standard"]
    with pytest.raises(ValueError, match="anchor_weight > 0"):
        _config(method="l2sp")
    with pytest.raises(ValueError, match="l2sp"):
        _config(method="gft", anchor_weight=0.1)


# ---------------------------------------------------------------- validation-chosen checkpoints


def test_split_validation_is_seeded_disjoint_and_refuses_too_little():
    pool = torch.arange(40.0).reshape(20, 2)
    train_a, val_a = split_validation(pool, 0.25, seed=1)
    train_b, val_b = split_validation(pool, 0.25, seed=1)
    assert torch.equal(val_a, val_b) and len(val_a) == 5 and len(train_a) == 15
    rows = {tuple(r) for r in train_a.tolist()} | {tuple(r) for r in val_a.tolist()}
    assert len(rows) == 20  # a partition of the pool
    assert not torch.equal(split_validation(pool, 0.25, seed=2)[1], val_a)
    assert split_validation(pool, 0.0, seed=1) == (pool, None)
    with pytest.raises(ValueError, match="fewer than 2"):
        split_validation(pool[:3], 0.5, seed=0)


def test_best_weights_keeps_the_lowest_energy_state():
    validation = sample_distribution("8gaussians", 200, 0)
    keeper = BestWeights(validation, 300, seed=0)
    models = [build_seeded(SMALL, s) for s in range(3)]
    energies = [keeper(m) for m in models]
    best = int(np.argmin(energies))
    assert keeper.best_call == best and keeper.best_energy == min(energies)
    restored = keeper.best_model(models[0])
    assert torch.equal(_params(restored), _params(models[best])) and restored is not models[0]
    assert keeper(restored) == pytest.approx(min(energies))  # same noise: the same number again


def test_a_run_keeps_its_best_validated_checkpoint(pre):
    task = task_for("8gaussians")
    config = _config(steps=60, schedule="linear:5", tau_end=0.2)
    trainer = make_trainer(task, config, base=pre, limit=40, monitor=Monitor(eval_every=20, eval_points=300, val_fraction=0.25))
    assert len(trainer.target) == 30  # 10 of the 40 held out
    result = trainer.run()
    row = best_point(result.history)
    assert [r["step"] for r in result.history if VALIDATION in r] == [0, 20, 40, 60]
    assert row[VALIDATION] == min(r[VALIDATION] for r in result.history if VALIDATION in r)
    best = best_weights(trainer).best_model(trainer.result_model)
    _, validation = split_validation(task.pool(0, 40), 0.25, 0)
    again = BestWeights(validation, 300, seed=0)(best)
    assert again == pytest.approx(row[VALIDATION], abs=1e-6)


def test_cli_keeps_the_best_checkpoint_and_reports_it(tmp_path, capsys):
    from gft.cli import main
    from gft.core.checkpoints import load_checkpoint, save_checkpoint

    base = tmp_path / "base.pt"
    save_checkpoint(base, build_seeded(ModelConfig(), 0), "moons", {})
    args = ["finetune", "--base", base, "--data", "8gaussians", "--limit", 40, "--steps", 40, "--eval-every", 20,
            "--val-fraction", "0.25", "--keep", "best", "--schedule", "linear:4", "--tau-end", "0.5", "--json", "--out"]
    assert main([str(a) for a in [*args, tmp_path / "best.pt"]]) == 0
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert report["keep"] == "best" and report["best_step"] in (0, 20, 40) and report["best_tau"] >= 0.5
    saved = load_checkpoint(tmp_path / "best.pt")
    assert saved.extra["best_step"] == report["best_step"] and saved.train["tau_end"] == 0.5
    assert main(["finetune", "--base", str(base), "--data", "8gaussians", "--keep", "best", "--out", str(tmp_path / "x.pt")]) == 1
    assert "--val-fraction" in capsys.readouterr().err


# ---------------------------------------------------------------- the unbiased energy distance


def test_unbiased_energy_matches_its_definition_and_is_centred_under_the_null():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(30, 2)), rng.normal(size=(40, 2)) + 0.5
    dxy = np.linalg.norm(x[:, None] - y[None], axis=-1).mean()
    dxx = np.linalg.norm(x[:, None] - x[None], axis=-1).sum() / (30 * 29)
    dyy = np.linalg.norm(y[:, None] - y[None], axis=-1).sum() / (40 * 39)
    assert energy_distance_unbiased(x, y) == pytest.approx(2 * dxy - dxx - dyy)
    null = [energy_distance_unbiased(rng.normal(size=(100, 2)), rng.normal(size=(150, 2))) for _ in range(40)]
    # Centred at zero (within 4 standard errors); the biased form would sit at a positive offset.
    assert abs(np.mean(null)) < 4 * np.std(null) / np.sqrt(len(null))
    shifted = energy_distance_unbiased(rng.normal(size=(100, 2)), rng.normal(size=(150, 2)) + 0.5)
    assert shifted > np.mean(null) + 5 * np.std(null)
