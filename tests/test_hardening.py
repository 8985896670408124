"""Hostile-user cases (issue 10): each test failed before its fix.

Divergence before NaN, checkpoints checked on load (finite, hashed, typed metadata), outputs checked
before training, permissions and symlinks kept on overwrite, refusals that are one line naming the
file or argument, and the app bound to localhost with a bounded, vectorised upload path.
"""

from __future__ import annotations

import io
import json
import os
import stat
import time
import tomllib
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from cli_inprocess import assert_one_line_refusal, rewrite_checkpoint, run_main

import gft.cli as cli
from gft.core.checkpoints import (
    FORMAT,
    atomic_write_bytes,
    checkpoint_bytes,
    checkpoint_from_bytes,
    load_checkpoint,
    save_checkpoint,
)
from gft.core.models import MLPFlow, ModelConfig
from gft.core.sampling import SampleResult, sample_ode
from gft.core.training import TrainConfig, Trainer, TrainingDiverged
from gft.data import points_from_bytes, validate_points
from gft.data.files import _parse_csv_text
from gft.tasks.runs import make_trainer, task_for
from gft.tasks.shipped import ASSET_DIR, load_shipped

ROOT = Path(__file__).resolve().parents[1]
TINY = ModelConfig(width=16, depth=1)


def _tiny_model(seed: int = 0) -> MLPFlow:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return MLPFlow(TINY)


def _saved(path: Path, data: str = "moons") -> Path:
    save_checkpoint(path, _tiny_model(), data, {"sigma": 0.0, "coupling": "independent", "seed": 0})
    return path


def _rewrite(path: Path, **changes) -> Path:
    """Change a checkpoint in place (see cli_inprocess.rewrite_checkpoint)."""
    return rewrite_checkpoint(path, path, **changes)


def _bimodal(scale: float) -> np.ndarray:
    r = np.random.default_rng(1)
    return np.where(r.random((500, 2)) < 0.5, -scale, scale)


# ---- 1. divergence before NaN ----------------------------------------------------------------------
def test_sustained_loss_growth_stops_training_before_nan():
    # The data (+-1e6, refused by files.py but not by the Trainer) at lr 1: 1e12 -> 1e25, finite.
    target = torch.tensor(_bimodal(9.99e5), dtype=torch.float32)
    trainer = Trainer(target, TrainConfig(method="pretrain", steps=300, lr=1.0, device="cpu"), init=ModelConfig(width=128, depth=3))
    with pytest.raises(TrainingDiverged) as info:
        trainer.run()
    trainer.close()
    message = str(info.value)
    assert "\n" not in message and "lower the learning rate" in message and "grew" in message
    assert trainer.step < 300


def test_cli_stops_a_diverging_run_and_saves_nothing(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    run = run_main(["pretrain", "--data", "moons", "--lr", "1", "--steps", "300", "--eval-every", "0", "--out", "d.pt", "--json"], capsys)
    assert_one_line_refusal(run, "lower the learning rate")
    assert not (tmp_path / "d.pt").exists()


@pytest.mark.parametrize(
    "method, lr, steps, data",
    [("pretrain", 0.1, 300, "moons"), ("gft", 1e-3, 600, "8gaussians"), ("standard", 0.05, 300, "8gaussians"), ("gft", 2e-2, 300, "8gaussians")],
)
def test_sane_runs_never_trip_the_divergence_rule(method, lr, steps, data):
    config = TrainConfig(method=method, steps=steps, lr=lr, seed=3, device="cpu", schedule="stages:10,0.5,5" if method == "gft" else "constant:0")
    base = load_shipped("moons").model if method != "pretrain" else None
    trainer = make_trainer(task_for(data), config, base=base, model_config=ModelConfig(width=64, depth=3) if base is None else None)
    result = trainer.run()  # raises TrainingDiverged if the rule trips
    assert result.steps == steps


@pytest.mark.slow
def test_a_digits_run_never_trips_the_divergence_rule():
    task = task_for("digits:0-4")
    config = TrainConfig(method="pretrain", steps=150, batch=64, lr=2e-3, seed=0, device="cpu")
    assert make_trainer(task, config, model_config=task.model_config(width=8)).run().steps == 150


def test_points_far_from_unit_scale_are_refused_with_a_hint(tmp_path, monkeypatch, capsys):
    np.save(tmp_path / "b.npy", _bimodal(9.99e5))
    monkeypatch.chdir(tmp_path)
    run = run_main(["pretrain", "--data", "file:b.npy", "--steps", "3", "--out", "d.pt"], capsys)
    assert_one_line_refusal(run, "b.npy", "standardise")
    with pytest.raises(ValueError, match="standardise"):
        validate_points(np.random.default_rng(0).normal(size=(50, 2)) * 1e-6, "tiny.npy")


# ---- 2. checkpoints checked on load -----------------------------------------------------------------
def test_a_non_finite_weight_is_refused(tmp_path):
    path = _rewrite(_saved(tmp_path / "m.pt"), state=lambda s: next(iter(s.values())).view(-1)[0].fill_(float("inf")))
    with pytest.raises(ValueError, match="non-finite") as info:
        load_checkpoint(path)
    assert str(path) in str(info.value)


def test_flipped_bytes_inside_a_tensor_are_refused(tmp_path):
    path = _saved(tmp_path / "m.pt")
    payload = bytearray(path.read_bytes())
    weight = next(iter(_tiny_model().state_dict().values())).numpy().tobytes()
    at = payload.find(weight)
    assert at > 0
    payload[at + 8 : at + 24] = bytes(b ^ 0x01 for b in payload[at + 8 : at + 24])  # finite, small changes
    path.write_bytes(bytes(payload))
    with pytest.raises(ValueError, match="hash"):
        load_checkpoint(path)


def test_old_unhashed_checkpoints_still_load_and_are_checked(tmp_path):
    def as_v1(meta):
        meta = {k: v for k, v in meta.items() if k != "sha256"}
        return json.dumps(dict(meta, format_version=1))

    path = _rewrite(_saved(tmp_path / "old.pt"), meta=as_v1)
    assert load_checkpoint(path).data == "moons"
    _rewrite(path, state=lambda s: next(iter(s.values())).view(-1)[0].fill_(float("nan")))
    with pytest.raises(ValueError, match="non-finite"):
        load_checkpoint(path)


def test_every_shipped_asset_loads():
    names = sorted(p.name for p in ASSET_DIR.glob("*pretrained_*.pt"))
    assert len(names) >= 6, names
    for name in names:
        assert load_checkpoint(ASSET_DIR / name).model is not None, name


def test_save_then_load_round_trips_with_a_hash():
    ckpt = checkpoint_from_bytes(checkpoint_bytes(_tiny_model(), "moons", {"seed": 1}, {"limit": None}))
    assert ckpt.data == "moons" and ckpt.train == {"seed": 1}


def test_non_finite_samples_are_not_written(tmp_path, monkeypatch, capsys):
    _saved(tmp_path / "m.pt")
    monkeypatch.chdir(tmp_path)
    bad = SampleResult(x=torch.full((5, 2), float("nan")), trajectory=None, nfe=1, times=torch.linspace(0, 1, 3))
    monkeypatch.setattr(cli, "sample_ode", lambda *a, **k: bad)
    run = run_main(["sample", "--model", "m.pt", "--n", "5", "--solver", "euler", "--out", "s.npy"], capsys)
    assert_one_line_refusal(run, "not finite")
    assert not (tmp_path / "s.npy").exists()


def test_dopri5_on_a_non_finite_model_is_a_one_line_runtime_error():
    model = _tiny_model()
    with torch.no_grad():
        next(model.parameters()).view(-1)[0] = float("inf")
    with pytest.raises(RuntimeError, match="fixed-step solver") as info:
        sample_ode(model, torch.randn(5, 2), "dopri5", 1)
    assert "\n" not in str(info.value)


# ---- 3. metadata of the wrong type ------------------------------------------------------------------
@pytest.mark.parametrize(
    "change, field",
    [
        (lambda m: json.dumps([1]), "metadata"),
        (lambda m: json.dumps(dict(m, data=12345)), "data"),
        (lambda m: json.dumps(dict(m, train="x")), "train"),
        (lambda m: json.dumps(dict(m, extra=[1])), "extra"),
        (lambda m: json.dumps(dict(m, model="mlp")), "model"),
        (lambda m: json.dumps(dict(m, format_version="2")), "format_version"),
        (lambda m: json.dumps(dict(m, train=dict(m["train"], seed="x"))), "train.seed"),
        (lambda m: json.dumps(dict(m, extra={"limit": "all"})), "extra.limit"),
    ],
)
def test_metadata_of_the_wrong_type_is_one_line_naming_the_field(tmp_path, monkeypatch, capsys, change, field):
    path = _rewrite(_saved(tmp_path / "m.pt"), meta=change)
    with pytest.raises(ValueError) as info:
        load_checkpoint(path)
    assert field in str(info.value) and str(path) in str(info.value)
    monkeypatch.chdir(tmp_path)
    for argv in (["sample", "--model", "m.pt", "--n", "5", "--out", "s.npy"], ["evaluate", "--model", "m.pt", "--data", "moons", "--n", "20"],
                 ["finetune", "--base", "m.pt", "--data", "moons", "--steps", "1", "--out", "f.pt"]):
        assert_one_line_refusal(run_main(argv, capsys), field)


# ---- 4. evaluate --n bounded ------------------------------------------------------------------------
def test_evaluate_n_is_bounded_before_any_work(tmp_path, capsys):
    run = run_main(["evaluate", "--model", str(_saved(tmp_path / "m.pt")), "--data", "moons", "--n", "100000"], capsys)
    assert_one_line_refusal(run, "--n", "20000", "n^2")


# ---- 5. the app stays on localhost; uploads bounded and parsed vectorised ----------------------------
def test_streamlit_config_binds_localhost_and_bounds_uploads():
    server = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())["server"]
    assert server["address"] == "127.0.0.1"
    assert 1 <= server["maxUploadSize"] <= 50


def test_csv_parsing_keeps_headers_blank_lines_and_one_line_errors():
    arr = _parse_csv_text("x;y\n\n 1.5 , 2\n3;4\n\n", "p.csv")
    assert arr.tolist() == [[1.5, 2.0], [3.0, 4.0]]
    with pytest.raises(ValueError, match=r"p.csv: line 3 is not numeric"):
        _parse_csv_text("x,y\n1,2\nfoo,3\n", "p.csv")
    with pytest.raises(ValueError, match="different numbers of columns"):
        _parse_csv_text("1,2\n3,4,5\n", "p.csv")
    with pytest.raises(ValueError, match="no data rows"):
        _parse_csv_text("x,y\n\n", "p.csv")


def test_csv_parsing_is_vectorised(monkeypatch):
    # The well-formed file goes through numpy's C reader in one call, never a Python loop over its lines
    # (speed itself is a benchmark's business, not a test's).
    from gft.data import files

    rows = np.random.default_rng(0).normal(size=(2_000, 2))
    text = "x,y\n" + "\n".join(f"{a:.6f},{b:.6f}" for a, b in rows)
    calls = []
    real = files.np.loadtxt

    def spy(*args, **kwargs):
        calls.append(kwargs.get("skiprows"))
        return real(*args, **kwargs)

    monkeypatch.setattr(files.np, "loadtxt", spy)
    parsed = _parse_csv_text(text, "big.csv")
    assert np.allclose(parsed, rows, atol=1e-6)
    assert calls == [1]  # one vectorised read, the header row skipped


# ---- 6. --out checked before the first step ---------------------------------------------------------
@pytest.mark.parametrize("out", ["/proc/x.pt", "adir", "afile/x.pt"])
def test_unwritable_out_fails_before_training(tmp_path, monkeypatch, capsys, out):
    (tmp_path / "adir").mkdir()
    (tmp_path / "afile").write_text("x")
    monkeypatch.chdir(tmp_path)

    def must_not_train(*args, **kwargs):
        raise AssertionError("trained before checking --out")

    monkeypatch.setattr(cli, "make_trainer", must_not_train)
    run = run_main(["pretrain", "--data", "moons", "--steps", "5", "--out", out], capsys)
    assert_one_line_refusal(run, "--out")


# ---- 7. permissions and symlinks on overwrite --------------------------------------------------------
def test_overwriting_keeps_the_mode_of_the_replaced_file(tmp_path):
    path = tmp_path / "m.pt"
    path.write_bytes(b"old")
    path.chmod(0o600)
    atomic_write_bytes(path, b"new")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and path.read_bytes() == b"new"


def test_writing_through_a_symlink_keeps_the_link(tmp_path):
    (tmp_path / "real").mkdir()
    target = tmp_path / "real" / "m.pt"
    target.write_bytes(b"old")
    link = tmp_path / "m.pt"
    link.symlink_to(target)
    atomic_write_bytes(link, b"new")
    assert link.is_symlink() and target.read_bytes() == b"new"
    assert sorted(p.name for p in (tmp_path / "real").iterdir()) == ["m.pt"]


# ---- 8. non-real dtypes -----------------------------------------------------------------------------
def test_complex_points_are_refused_in_files_and_uploads(tmp_path, monkeypatch, capsys):
    pts = (np.random.default_rng(0).normal(size=(20, 2)) + 1j).astype(np.complex64)
    np.save(tmp_path / "c.npy", pts)
    monkeypatch.chdir(tmp_path)
    assert_one_line_refusal(run_main(["pretrain", "--data", "file:c.npy", "--steps", "1", "--out", "o.pt"], capsys), "c.npy", "real")
    buf = io.BytesIO()
    np.save(buf, pts)
    with pytest.raises(ValueError, match="real"):
        points_from_bytes(buf.getvalue(), "c.npy")


# ---- 9. the right reason, one line ------------------------------------------------------------------
def test_huge_values_are_out_of_range_not_nan_and_warn_nothing():
    arr = np.random.default_rng(0).normal(size=(20, 2))
    arr[3, 0] = 1e300
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(ValueError) as info:
            validate_points(arr, "big.csv")
    assert "NaN" not in str(info.value) and "within" in str(info.value)


def test_random_bytes_npy_is_not_a_pickle_lecture(tmp_path, monkeypatch, capsys):
    (tmp_path / "r.npy").write_bytes(np.random.default_rng(0).bytes(512))
    monkeypatch.chdir(tmp_path)
    line = assert_one_line_refusal(run_main(["pretrain", "--data", "file:r.npy", "--steps", "1", "--out", "o.pt"], capsys), "r.npy", "not a valid .npy")
    assert "pickle" not in line


def test_tiny_sinkhorn_reg_is_one_line_without_a_missing_option(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    argv = ["pretrain", "--data", "moons", "--coupling", "sinkhorn", "--sinkhorn-reg", "1e-9", "--steps", "3", "--eval-every", "0", "--out", "o.pt"]
    line = assert_one_line_refusal(run_main(argv, capsys), "--sinkhorn-reg")
    assert "log domain" not in line


def test_raw_pickle_checkpoint_is_one_line(tmp_path, monkeypatch, capsys):
    import pickle

    (tmp_path / "raw.pt").write_bytes(pickle.dumps({"meta": "{}", "state_dict": {}}))
    monkeypatch.chdir(tmp_path)
    assert_one_line_refusal(run_main(["sample", "--model", "raw.pt", "--out", "s.npy"], capsys), "raw.pt", "not a gft checkpoint")


# ---- 10. partial outputs and strays -----------------------------------------------------------------
@pytest.mark.parametrize("trajectory", ["b.txt", "a.npy", "adir"])
def test_sample_checks_every_output_before_writing_any(tmp_path, monkeypatch, capsys, trajectory):
    _saved(tmp_path / "m.pt")
    (tmp_path / "adir").mkdir()
    monkeypatch.chdir(tmp_path)
    before = set(tmp_path.iterdir())
    run = run_main(["sample", "--model", "m.pt", "--n", "5", "--solver", "euler", "--steps", "2", "--out", "a.npy", "--trajectory", trajectory], capsys)
    assert_one_line_refusal(run, "--trajectory")
    assert set(tmp_path.iterdir()) == before


def test_stale_temp_files_of_the_same_target_are_removed(tmp_path):
    stale, fresh, other = tmp_path / ".m.pt.abc123.tmp", tmp_path / ".m.pt.def456.tmp", tmp_path / ".n.pt.abc123.tmp"
    for p in (stale, fresh, other):
        p.write_bytes(b"partial")
    an_hour_ago = time.time() - 3600
    os.utime(stale, (an_hour_ago, an_hour_ago))
    os.utime(other, (an_hour_ago, an_hour_ago))
    atomic_write_bytes(tmp_path / "m.pt", b"done")
    # The stale one goes; a fresh one may belong to a writer still at work; another target's is not ours.
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([".m.pt.def456.tmp", ".n.pt.abc123.tmp", "m.pt"])


# ---- 11. small ones ---------------------------------------------------------------------------------
@pytest.mark.parametrize("command", [["pretrain", "--data", "moons", "--out", "o.pt"], ["sample", "--model", "m.pt", "--out", "s.npy"]])
def test_seed_beyond_what_torch_accepts_is_an_argument_error(tmp_path, monkeypatch, capsys, command):
    monkeypatch.chdir(tmp_path)
    assert_one_line_refusal(run_main(command + ["--seed", str(2**70)], capsys), "--seed")
    assert not list(tmp_path.iterdir())


def test_negative_eval_every_is_an_argument_error(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert_one_line_refusal(run_main(["pretrain", "--data", "moons", "--steps", "1", "--eval-every", "-3", "--out", "o.pt"], capsys), "--eval-every")


def test_json_says_whether_out_was_replaced(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    argv = ["pretrain", "--data", "moons", "--steps", "2", "--width", "16", "--depth", "1", "--eval-every", "0", "--out", "p.pt", "--json"]
    first, second = run_main(argv, capsys), run_main(argv, capsys)
    assert first.code == second.code == 0, (first.err, second.err)
    assert json.loads(first.out.splitlines()[-1])["replaced"] is False
    assert json.loads(second.out.splitlines()[-1])["replaced"] is True
    sample = ["sample", "--model", "p.pt", "--n", "5", "--solver", "euler", "--steps", "2", "--out", "s.npy", "--json"]
    assert json.loads(run_main(sample, capsys).out.splitlines()[-1])["replaced"] is False
    assert json.loads(run_main(sample, capsys).out.splitlines()[-1])["replaced"] is True


def test_format_constant_is_unchanged():
    assert FORMAT == "gft-flow-checkpoint"
