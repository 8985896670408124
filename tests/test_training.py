"""The training loop end to end, its reproducibility and controls, and checkpoints on disk."""

from __future__ import annotations

import io
import threading
from pathlib import Path

import numpy as np
import pytest
import torch

import gft.core.checkpoints as checkpoints
from gft.core.checkpoints import (
    atomic_write_bytes,
    checkpoint_bytes,
    checkpoint_from_bytes,
    load_checkpoint,
    save_checkpoint,
)
from gft.core.models import MLPFlow, ModelConfig
from gft.core.sampling import noise, sample_ode
from gft.core.training import Hook, Snapshot, TrainConfig, Trainer, TrainingDiverged, train
from gft.data import sample_distribution
from gft.evaluation.metrics import wasserstein2
from gft.evaluation.monitors import heldout_w2, trajectories

SMALL = ModelConfig(width=64, depth=3)


def _mlp(seed: int, config: ModelConfig = SMALL) -> MLPFlow:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return MLPFlow(config)


def _config(**overrides) -> TrainConfig:
    base = dict(method="pretrain", steps=40, batch=128, lr=2e-3, seed=0, device="cpu", callback_every=10)
    base.update(overrides)
    return TrainConfig(**base)


def _params(model: torch.nn.Module) -> torch.Tensor:
    return torch.cat([p.detach().flatten() for p in model.parameters()])


@pytest.fixture(scope="module")
def pretrained_on_moons() -> MLPFlow:
    model, result = train(sample_distribution("moons", 20_000, seed=0), _config(steps=800, batch=256), init=_mlp(0))
    assert result.steps == 800
    return model


# ---------------------------------------------------------------- end to end


# Slow (~25 s): its thresholds would also pass standard fine-tuning. The quick tier's end-to-end checks
# that tell GFT from standard fine-tuning are in test_gaussian_gft.py (the closed-form terminal law,
# through the CLI and the Trainer) and test_gft_at_huge_tau_stays_at_the_pretrained_model below.
@pytest.mark.slow
def test_gft_moves_a_pretrained_model_to_a_new_target(pretrained_on_moons):
    target = "8gaussians"
    x0 = noise(1000, (2,), seed=5)
    reference = sample_distribution(target, 1000, seed=99)
    floor = wasserstein2(sample_distribution(target, 1000, seed=98), reference, n=1000)

    def w2(model) -> float:
        return wasserstein2(sample_ode(model, x0, "heun", 20).x, reference, n=1000)

    # The pretrained model really learned its own data, and is far from the new target.
    moons_w2 = wasserstein2(sample_ode(pretrained_on_moons, x0, "heun", 20).x, sample_distribution("moons", 1000, seed=99), n=1000)
    assert moons_w2 < 0.5
    w2_pre = w2(pretrained_on_moons)

    config = _config(method="gft", steps=1000, batch=256, schedule="stages:10,0.5,5", coupling="ot", callback_every=100)
    model, result = train(sample_distribution(target, 20_000, seed=1), config, pretrained=pretrained_on_moons)
    w2_gft = w2(model)
    print(f"W2 pretrained {w2_pre:.3f}, after GFT {w2_gft:.3f}, floor {floor:.3f}")
    assert w2_gft < 0.5 * w2_pre
    assert w2_gft < 1.8 * floor
    # The run followed its schedule: tau starts at 10, is 0 at the end, loss rows are finite.
    assert result.history[0]["tau"] == 10.0 and result.history[-1]["tau"] == 0.0
    assert all(np.isfinite(row["loss"]) for row in result.history)
    assert result.ot_seconds_per_batch > 0 and not result.stopped


# ---------------------------------------------------------------- reproducibility


@pytest.mark.parametrize("coupling", ["ot", "sinkhorn"])
def test_same_seed_same_run_and_different_seed_different_run(coupling):
    pre = _mlp(3)
    target = sample_distribution("8gaussians", 5000, seed=0)

    def run(seed: int):
        # reg 1: at the default 0.05 Sinkhorn runs its full 1000 iterations on this cost scale (seconds a batch).
        config = _config(method="gft", steps=20, batch=64, seed=seed, schedule="linear:2", coupling=coupling, sinkhorn_reg=1.0)
        model, result = train(target, config, pretrained=pre)
        return _params(model), [row["loss"] for row in result.history]

    p1, h1 = run(0)
    p2, h2 = run(0)
    p3, h3 = run(1)
    assert torch.equal(p1, p2) and h1 == h2
    assert not torch.equal(p1, p3) and h1 != h3


@pytest.mark.parametrize("coupling", ["ot", "sinkhorn"])
def test_the_run_does_not_depend_on_the_number_of_ot_workers(coupling):
    # Batches are drawn in order on the training thread and solved by 1, 2 or 3 threads that may
    # finish in any order; the weights must come out bit for bit the same.
    pre = _mlp(3)
    target = sample_distribution("8gaussians", 5000, seed=0)
    params = []
    for workers in (1, 2, 3):
        config = _config(method="gft", steps=25, batch=64, schedule="linear:2", coupling=coupling, sinkhorn_reg=1.0,
                         ot_workers=workers)
        model, result = train(target, config, pretrained=pre)
        assert result.steps == 25 and result.ot_seconds_per_batch > 0
        params.append(_params(model))
    assert torch.equal(params[0], params[1]) and torch.equal(params[0], params[2])


def test_chunked_run_equals_one_run():
    pre = _mlp(3)
    target = sample_distribution("moons", 5000, seed=0)
    config = _config(method="gft", steps=30, schedule="stages:3,0.5,3", coupling="ot")
    whole, _ = train(target, config, pretrained=pre)
    trainer = Trainer(target, config, pretrained=pre)
    while not trainer.done:
        trainer.run(max_steps=7)
    trainer.close()
    assert trainer.step == 30
    assert torch.equal(_params(trainer.model), _params(whole))


# ---------------------------------------------------------------- controls


def test_stop_event_stops_the_run():
    stop = threading.Event()
    seen: list[int] = []

    def callback(snap: Snapshot) -> None:
        seen.append(snap.step)
        if snap.step >= 20:
            stop.set()

    model, result = train(sample_distribution("moons", 2000, 0), _config(steps=200), init=_mlp(0), callback=callback, stop_event=stop)
    assert result.stopped
    assert result.steps == 20 < 200
    assert seen == [0, 10, 20]


def test_callbacks_receive_snapshots_with_trajectories():
    snaps: list[Snapshot] = []
    data = sample_distribution("moons", 2000, 0)
    config = _config(steps=20, callback_every=10)
    hooks = [Hook("trajectory", 10, trajectories(33, (2,), config.seed, 6)), Hook("w2", 10, heldout_w2(data[:200], 200, 0))]
    train(data, config, init=_mlp(0), hooks=hooks, callback=snaps.append)
    assert [s.step for s in snaps] == [0, 10, 20]
    for s in snaps:
        assert s.total_steps == 20
        assert isinstance(s.trajectory, np.ndarray) and s.trajectory.dtype == np.float32
        assert s.trajectory.shape == (7, 33, 2)
        np.testing.assert_array_equal(s.samples, s.trajectory[-1])
        assert np.isfinite(s.values["w2"]) and s.row()["w2"] == s.values["w2"]
    # Fixed snapshot noise: every trajectory starts from the same particles.
    np.testing.assert_array_equal(snaps[0].trajectory[0], snaps[-1].trajectory[0])
    assert snaps[0].loss is None and snaps[1].loss is not None


def test_no_trajectory_without_a_trajectory_hook():
    snaps: list[Snapshot] = []
    train(sample_distribution("moons", 2000, 0), _config(steps=10), init=_mlp(0), callback=snaps.append)
    assert all(s.trajectory is None and s.samples is None and not s.values for s in snaps)


def test_hooks_run_at_start_every_n_steps_and_at_the_end():
    calls: list[int] = []
    trainer = Trainer(sample_distribution("moons", 2000, 0), _config(steps=25, callback_every=100), init=_mlp(0),
                      hooks=[Hook("probe", 10, lambda model: float(len(calls.append(trainer.step) or calls)))])
    result = trainer.run()
    assert calls == [0, 10, 20, 25]
    assert [r["step"] for r in result.history] == [0, 10, 20, 25]  # a row wherever a hook ran
    assert [r["probe"] for r in result.history] == [1.0, 2.0, 3.0, 4.0]
    with pytest.raises(ValueError, match="every"):
        Hook("probe", 0, lambda model: 0.0)
    with pytest.raises(ValueError, match="history column"):
        Hook("loss", 5, lambda model: 0.0)
    with pytest.raises(ValueError, match="unique"):
        Trainer(sample_distribution("moons", 100, 0), _config(), init=_mlp(0), hooks=[Hook("a", 1, float), Hook("a", 2, float)])


def test_the_trainer_never_changes_the_models_it_is_given():
    init, pre = _mlp(20), _mlp(21)
    init_before, pre_before = _params(init).clone(), _params(pre).clone()
    data = sample_distribution("moons", 2000, 0)
    pretrained_model, _ = train(data, _config(steps=10), init=init)
    assert pretrained_model is not init and torch.equal(_params(init), init_before)
    for method in ("gft", "standard", "scratch"):
        model, _ = train(data, _config(method=method, steps=10, schedule="constant:1"), pretrained=pre)
        assert model is not pre and not torch.equal(_params(model), pre_before), method
        assert torch.equal(_params(pre), pre_before) and pre.training, method


@pytest.mark.parametrize("bad_value", [1e30, float("nan"), float("inf")])
def test_non_finite_loss_raises_training_diverged(bad_value):
    target = sample_distribution("moons", 500, 0)
    target[::3] = bad_value  # a third of the points: every batch of 128 holds some
    model = _mlp(0)
    before = _params(model).clone()
    trainer = Trainer(target, _config(steps=10), init=model)
    with pytest.raises(TrainingDiverged, match="non-finite"):
        trainer.run()
    trainer.close()
    # Refused before the optimiser step: the weights are not poisoned.
    assert trainer.step == 0
    assert torch.equal(_params(trainer.model), before)


def test_scratch_ignores_the_pretrained_weights():
    target = sample_distribution("moons", 2000, 0)
    pre_a, pre_b = _mlp(10), _mlp(11)
    config = _config(method="scratch", steps=20, seed=5)
    a = Trainer(target, config, pretrained=pre_a)
    b = Trainer(target, config, pretrained=pre_b)
    # Fresh weights from the run's seed in the pretrained model's architecture, not its weights.
    assert torch.equal(_params(a.model), _params(b.model))
    assert not torch.equal(_params(a.model), _params(pre_a))
    a.run(), b.run()
    assert torch.equal(_params(a.model), _params(b.model))
    with pytest.raises(ValueError, match="init"):
        Trainer(target, config, init=_mlp(10))  # a model's weights would be silently ignored


@pytest.mark.parametrize("method", ["gft", "standard"])
def test_fine_tuning_starts_from_the_pretrained_weights(method):
    pre = _mlp(10)
    trainer = Trainer(sample_distribution("moons", 2000, 0), _config(method=method, steps=5, schedule="constant:1"), pretrained=pre)
    assert torch.equal(_params(trainer.model), _params(pre))
    trainer.run()
    assert not torch.equal(_params(trainer.model), _params(pre))
    # The frozen copy that GFT regresses towards does not move with the model.
    if method == "gft":
        assert torch.equal(_params(trainer.objective.pretrained), _params(pre))
    else:
        assert trainer.objective.pretrained is None
    with pytest.raises(ValueError, match="pretrained"):
        Trainer(sample_distribution("moons", 100, 0), _config(method=method), init=_mlp(11))
    # Another start of the same architecture is used as given (copied), never overwritten.
    other = _mlp(11)
    before = _params(other).clone()
    started = Trainer(sample_distribution("moons", 100, 0), _config(method=method, schedule="constant:1"), init=other, pretrained=pre)
    assert torch.equal(_params(started.model), before) and started.model is not other
    with pytest.raises(ValueError, match="width 64 vs 32"):
        Trainer(sample_distribution("moons", 100, 0), _config(method=method, schedule="constant:1"), init=_mlp(1, ModelConfig(width=32, depth=3)), pretrained=pre)


def test_gft_at_huge_tau_stays_at_the_pretrained_model():
    # lambda ~ 1: the blended target is the pretrained drift, and training starts there.
    pre = _mlp(10)
    target = sample_distribution("8gaussians", 2000, 0)
    model, _ = train(target, _config(method="gft", steps=30, schedule="constant:1e6"), pretrained=pre)
    standard, _ = train(target, _config(method="standard", steps=30), pretrained=pre)
    x, t = torch.randn(200, 2, generator=torch.Generator().manual_seed(0)), torch.rand(200, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        drift_gft = (model(x, t) - pre(x, t)).abs().max()
        drift_std = (standard(x, t) - pre(x, t)).abs().max()
    assert drift_gft < 0.05 < drift_std


@pytest.mark.parametrize("coupling", ["independent", "sinkhorn"])
def test_score_head_training_with_stochastic_paths(coupling):
    config_m = ModelConfig(width=32, depth=2, score_head=True)
    target = sample_distribution("moons", 2000, 0)
    # Schrodinger-bridge pairing: reg = 2 sigma^2.
    settings = dict(steps=20, batch=64, sigma=0.5, coupling=coupling, sinkhorn_reg=0.5)
    pre, _ = train(target, _config(**settings), init=_mlp(0, config_m))
    trainer = Trainer(sample_distribution("circles", 2000, 0), _config(method="gft", schedule="linear:3", **settings), pretrained=pre)
    result = trainer.run()
    assert np.isfinite(result.final_loss) and all(np.isfinite(r["loss"]) for r in result.history)
    g = torch.Generator().manual_seed(0)
    x1 = target[:64]
    x0 = torch.randn(x1.shape, generator=g)
    value = trainer.objective.loss(trainer.model, *trainer.coupling.pair(x0, x1, g), 0.5, g)
    assert value.score is not None and np.isfinite(value.score) and value.score > 0
    assert float(value.total.detach()) == pytest.approx(value.velocity + value.score, rel=1e-5)


def test_score_head_with_deterministic_ot_path_is_refused():
    config_m = ModelConfig(width=32, depth=2, score_head=True)
    with pytest.raises(ValueError, match="score"):
        Trainer(sample_distribution("moons", 100, 0), _config(coupling="ot", sigma=0.0), init=_mlp(0, config_m))


@pytest.mark.parametrize(
    "field,value",
    [("method", "finetune"), ("steps", 0), ("batch", 1), ("lr", 0.0), ("lr", 2.0), ("seed", -1), ("coupling", "emd"),
     ("sigma", -1.0), ("grad_clip", 0.0), ("callback_every", 0), ("ot_workers", -1), ("ot_workers", 1.5)],
)
def test_train_config_rejects_bad_fields(field, value):
    with pytest.raises(ValueError):
        _config(**{field: value})


@pytest.mark.parametrize("schedule", ["stages:10,2,5", "constant:-1", "linear"])
def test_gft_config_rejects_bad_schedules(schedule):
    with pytest.raises(ValueError):
        _config(method="gft", schedule=schedule)


# ---------------------------------------------------------------- checkpoints


@pytest.mark.parametrize("score_head", [False, True])
def test_checkpoint_round_trip_gives_identical_outputs(tmp_path, score_head):
    model = _mlp(7, ModelConfig(width=48, depth=2, score_head=score_head))
    train_dict = _config(coupling="ot", sigma=0.0).to_dict()
    path = tmp_path / "model.pt"
    save_checkpoint(path, model, "moons", train_dict, {"history": [{"step": 1, "loss": 0.5}], "parent": None})
    ckpt = load_checkpoint(path)
    assert ckpt.model.config == model.config
    assert ckpt.data == "moons" and ckpt.train == train_dict
    assert ckpt.extra["history"] == [{"step": 1, "loss": 0.5}]
    assert ckpt.training_settings == {"sigma": 0.0, "coupling": "ot"}
    x = torch.randn(64, 2, generator=torch.Generator().manual_seed(0))
    t = torch.rand(64, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        ours, theirs = model.heads(x, t), ckpt.model.heads(x, t)
    assert ours.keys() == theirs.keys()
    for key in ours:
        assert torch.equal(ours[key], theirs[key])
    again = checkpoint_from_bytes(checkpoint_bytes(model, "moons", train_dict))
    assert torch.equal(_params(again.model), _params(model))


def _foreign_files(tmp_path: Path) -> dict[str, Path]:
    files = {}
    files["random bytes"] = tmp_path / "random.pt"
    files["random bytes"].write_bytes(np.random.default_rng(0).bytes(4096))
    files["empty"] = tmp_path / "empty.pt"
    files["empty"].write_bytes(b"")
    files["npy"] = tmp_path / "points.npy"
    np.save(files["npy"], np.zeros((10, 2), dtype=np.float32))
    files["plain dict"] = tmp_path / "plain.pt"
    torch.save({"weights": torch.zeros(3)}, files["plain dict"])
    files["other format"] = tmp_path / "other.pt"
    torch.save({"meta": '{"format": "someone-else"}', "state_dict": {}}, files["other format"])
    # A gft checkpoint whose weights do not fit its own description.
    good = torch.load(io.BytesIO(checkpoint_bytes(_mlp(0), "moons", {})), weights_only=True)
    good["state_dict"] = _mlp(0, ModelConfig(width=32, depth=2)).state_dict()
    files["mismatched weights"] = tmp_path / "mismatched.pt"
    torch.save(good, files["mismatched weights"])
    files["missing"] = tmp_path / "does-not-exist.pt"
    return files


def test_foreign_files_are_refused_with_value_error(tmp_path):
    for name, path in _foreign_files(tmp_path).items():
        with pytest.raises(ValueError) as info:
            load_checkpoint(path)
        assert str(path) in str(info.value), name
        assert "\n" not in str(info.value), name


def test_atomic_write_replaces_and_leaves_no_temp_files(tmp_path):
    path = tmp_path / "sub" / "file.bin"
    atomic_write_bytes(path, b"first")
    atomic_write_bytes(path, b"second")
    assert path.read_bytes() == b"second"
    assert sorted(p.name for p in path.parent.iterdir()) == ["file.bin"]


@pytest.mark.parametrize("where,error", [("replace", OSError), ("fsync", KeyboardInterrupt)])
def test_interrupted_write_keeps_the_earlier_file(tmp_path, monkeypatch, where, error):
    path = tmp_path / "model.pt"
    save_checkpoint(path, _mlp(0), "moons", {"steps": 1})
    before = path.read_bytes()

    def interrupted(*args, **kwargs):
        raise error("simulated interruption")

    monkeypatch.setattr(checkpoints.os, where, interrupted)
    with pytest.raises(error):
        save_checkpoint(path, _mlp(1), "circles", {"steps": 2})
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert load_checkpoint(path).data == "moons"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.pt"]
