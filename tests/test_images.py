"""Digits: specs and split, the convnet, the classifier, image metrics, GFT 0-4 -> 5-9 and the CLI."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from gft.cli import main
from gft.core.checkpoints import save_checkpoint
from gft.core.couplings import Coupling, pairing_cost
from gft.core.models import FlowModel, ModelConfig, build_model
from gft.core.training import TrainConfig, Trainer
from gft.data.digits import (
    N_CLASSES,
    TRANSFORMS,
    DigitsSpec,
    all_digits,
    digit_set,
    parse_digits_spec,
    split_indices,
    to_model_scale,
    to_pixels,
)
from gft.evaluation import classifier as clf
from gft.evaluation.image_metrics import frechet_distance, mean_pairwise_distance, nn_distance_ratio
from gft.evaluation.images import classifier_features, evaluate_images
from gft.tasks.chains import run_chain
from gft.tasks.digits import DigitsTask
from gft.tasks.runs import make_trainer

# The slow pretraining test: small enough for a shared 2-core CPU, large enough to learn 5 digits.
# (The quick tier fine-tunes the shipped 0-4 model: the digits_gft fixture in conftest.py.)
TEST_WIDTH = 16
TEST_BATCH = 64
PRETRAIN_STEPS = 600


# ---------------------------------------------------------------- specs, transforms, split


@pytest.mark.parametrize(
    "text, classes, transforms",
    [
        ("digits:0-4", (0, 1, 2, 3, 4), ()),
        ("digits:7", (7,), ()),
        ("digits:5-9", (5, 6, 7, 8, 9), ()),
        ("digits:1,3,5", (1, 3, 5), ()),
        ("digits:7,0-2", (0, 1, 2, 7), ()),
        ("digits:0-9+invert", tuple(range(10)), ("invert",)),
        ("digits:0-9+thicken+rotate", tuple(range(10)), ("thicken", "rotate")),
        ("digits:3+rotate+invert+shift", (3,), ("rotate", "invert", "shift")),
    ],
)
def test_spec_parsing(text, classes, transforms):
    spec = parse_digits_spec(text)
    assert spec.classes == classes
    assert spec.transforms == transforms
    assert parse_digits_spec(spec.text) == spec  # the canonical text parses back


@pytest.mark.parametrize(
    "text, problem",
    [
        ("digits:12", "class 12 is not a digit"),
        ("digits:0-12", "class 12 is not a digit"),
        ("digits:a-b", "'a-b' is not a digit"),
        ("digits:5-3", "runs backwards"),
        ("digits:", "no classes"),
        ("digits:1,1", "listed twice"),
        ("digits:0-9+blur", "unknown transform 'blur'"),
        ("digits:0-9+invert+invert", "each transform may appear once"),
        ("digits:0-9+", "empty transform"),
        ("mnist:0-9", "must start with 'digits:'"),
    ],
)
def test_bad_specs_name_the_problem(text, problem):
    with pytest.raises(ValueError, match=problem):
        parse_digits_spec(text)


def test_limit_larger_than_available_is_refused():
    n_train = len(digit_set(parse_digits_spec("digits:7"), "train"))
    assert 100 < n_train < 140  # about 70 % of the 180 sevens
    assert len(DigitsTask("digits:7").pool(0, limit=n_train)) == n_train
    with pytest.raises(ValueError, match=f"limit {n_train + 1} exceeds the {n_train} training images"):
        DigitsTask("digits:7").pool(0, limit=n_train + 1)


def test_transforms_keep_pixel_range_and_do_what_they_say():
    pixels, _ = all_digits()
    for name, fn in TRANSFORMS.items():
        out = fn(pixels)
        assert out.shape == pixels.shape and out.dtype == pixels.dtype, name
        assert float(out.min()) >= 0.0 and float(out.max()) <= 16.0, name
    assert torch.equal(TRANSFORMS["invert"](TRANSFORMS["invert"](pixels)), pixels)
    rotate = TRANSFORMS["rotate"]
    assert torch.equal(rotate(rotate(rotate(rotate(pixels)))), pixels)
    assert not torch.equal(rotate(pixels), pixels)
    thick = TRANSFORMS["thicken"](pixels)
    assert bool((thick >= pixels).all()) and float((thick > pixels).float().mean()) > 0.1
    shifted = TRANSFORMS["shift"](pixels)
    assert torch.equal(shifted[..., 1:], pixels[..., :-1])
    # Order matters: thickening after inverting grows the background instead of the strokes.
    a = DigitsSpec((0,), ("invert", "thicken")).apply(pixels[:5])
    b = DigitsSpec((0,), ("thicken", "invert")).apply(pixels[:5])
    assert not torch.equal(a, b)


def test_heldout_never_overlaps_train():
    train, held = split_indices()
    assert len(np.intersect1d(train, held)) == 0
    assert len(train) + len(held) == 1797 and len(np.unique(np.concatenate([train, held]))) == 1797
    _, labels = all_digits()
    for c in range(N_CLASSES):
        n_c = int((labels == c).sum())
        assert abs(int((labels[held] == c).sum()) - 0.3 * n_c) <= 1
    # Any spec, any limit, any seed: its training images come from the train part only.
    for text, limit, seed in [("digits:0-9+invert", None, 0), ("digits:7", 10, 3), ("digits:1,3,5", 50, 1)]:
        spec = parse_digits_spec(text)
        tr = digit_set(spec, "train", limit=limit, seed=seed)
        he = digit_set(spec, "heldout")
        assert set(tr.indices) <= set(train) and set(he.indices) <= set(held)
        assert set(tr.labels.tolist()) <= set(spec.classes) and set(he.labels.tolist()) == set(spec.classes)


def test_limited_subsets_are_balanced_nested_and_seeded():
    spec = parse_digits_spec("digits:0-4")
    ten = digit_set(spec, "train", limit=10, seed=0)
    fifty = digit_set(spec, "train", limit=50, seed=0)
    assert torch.bincount(ten.labels, minlength=10)[:5].tolist() == [2] * 5
    assert set(ten.indices) <= set(fifty.indices)
    other = digit_set(spec, "train", limit=10, seed=1)
    assert set(other.indices) != set(ten.indices)
    train_x, held_x = DigitsTask("digits:0-4").pool(0, limit=10), DigitsTask("digits:0-4").held_out(0)
    assert train_x.shape == (10, 1, 8, 8) and held_x.shape[1:] == (1, 8, 8)


def test_scales_round_trip_and_clamp():
    pixels, _ = all_digits()
    x = to_model_scale(pixels[:20])
    assert x.shape == (20, 1, 8, 8)
    assert float(x.min()) >= -1.0 and float(x.max()) <= 1.0
    assert torch.allclose(to_pixels(x), pixels[:20], atol=1e-5)
    wild = torch.tensor([-5.0, 0.0, 5.0]).view(3, 1, 1, 1).expand(3, 1, 8, 8)
    assert to_pixels(wild)[:, 0, 0].tolist() == [0.0, 8.0, 16.0]
    assert to_pixels(torch.zeros(4, 2, 1, 8, 8)).shape == (4, 2, 8, 8)  # trajectories too
    with pytest.raises(ValueError, match="shape"):
        to_pixels(torch.zeros(3, 64))


# ---------------------------------------------------------------- convnet


def test_convnet_heads_shapes_and_zero_start():
    x, t = torch.randn(5, 1, 8, 8), torch.rand(5)
    for upsample in (1, 2):
        for score_head in (False, True):
            config = DigitsTask("digits:0-9").model_config(upsample=upsample, width=8, score_head=score_head)
            model = build_model(config)
            assert isinstance(model, FlowModel) and config.kind == "convnet" and config.data_shape == (1, 8, 8)
            heads = model.heads(x, t)
            assert set(heads) == ({"velocity", "score"} if score_head else {"velocity"})
            for value in heads.values():
                assert value.shape == x.shape and value.is_contiguous()
                assert torch.count_nonzero(value) == 0  # zero-initialised output convolution
    with pytest.raises(ValueError, match="data_shape"):
        build_model(ModelConfig(kind="convnet", data_shape=(2, 8, 8), width=8))  # grey or colour only; sizes: tests/test_convnet_sizes.py


def test_core_couplings_and_objective_work_on_images():
    """OT pairs flattened images (never worse than the identity pairing); OT/Sinkhorn training steps run."""
    train_x = DigitsTask("digits:0-9").pool(0)
    g = torch.Generator().manual_seed(0)
    x0 = torch.randn(64, 1, 8, 8, generator=g)
    x1 = train_x[:64]
    p0, p1 = Coupling("ot").pair(x0, x1, g)
    assert p1.shape == x1.shape and pairing_cost(p0, p1) < pairing_cost(x0, x1)
    model = build_model(DigitsTask("digits:0-9").model_config(width=8))
    # Squared distances between images are ~100, ten times the 2D toys: scale the entropic reg with them.
    for coupling, sigma in (("ot", 0.0), ("sinkhorn", 0.5)):
        cfg = TrainConfig(
            method="pretrain", steps=3, batch=32, seed=0, coupling=coupling, sigma=sigma, sinkhorn_reg=5.0, device="cpu"
        )
        trainer = Trainer(train_x, cfg, init=model.config)
        result = trainer.run()
        assert result.steps == 3 and math.isfinite(result.final_loss)


# ---------------------------------------------------------------- classifier and metrics


def test_classifier_heldout_accuracy():
    model = clf.load_classifier()
    assert clf.accuracy(model, parse_digits_spec("digits:0-9")) > 0.9
    # Trained with the style transforms as augmentation, it still reads shifted digits.
    assert clf.accuracy(model, parse_digits_spec("digits:0-9+invert")) > 0.85
    # Its features see style: inverted digits are far from plain ones in FD.
    plain = classifier_features(to_model_scale(digit_set(parse_digits_spec("digits:0-9"), "heldout").pixels))
    train = classifier_features(to_model_scale(digit_set(parse_digits_spec("digits:0-9"), "train").pixels))
    inverted = classifier_features(to_model_scale(digit_set(parse_digits_spec("digits:0-9+invert"), "heldout").pixels))
    assert frechet_distance(inverted, plain) > 5 * frechet_distance(train, plain)


def test_frechet_distance_matches_gaussian_closed_form():
    g = torch.Generator().manual_seed(0)
    d = 8
    a = torch.randn(40_000, d, generator=g, dtype=torch.float64)
    b = 2.0 * torch.randn(40_000, d, generator=g, dtype=torch.float64) + 1.0
    # N(0, I) vs N(1, 4 I): |mu|^2 + tr(I + 4 I - 2 * 2 I) = d + d
    assert frechet_distance(a, b) == pytest.approx(2 * d, rel=0.03)
    assert frechet_distance(a, a) == pytest.approx(0.0, abs=1e-6)
    assert frechet_distance(a[:5], a[5:10]) >= 0.0  # fewer samples than dims: still real and finite


def test_memorisation_ratio_on_real_images():
    spec = parse_digits_spec("digits:5-9")
    train = to_model_scale(digit_set(spec, "train").pixels)
    held = to_model_scale(digit_set(spec, "heldout").pixels)
    copies = train[:200] + 0.01 * torch.randn(200, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    assert nn_distance_ratio(copies, train, held) < 0.05
    assert nn_distance_ratio(held.flip(0), train, held) == pytest.approx(1.0)
    assert mean_pairwise_distance(train) > 10 * mean_pairwise_distance(train[:1].expand(50, 1, 8, 8) + 1e-3 * torch.randn(50, 1, 8, 8))


class CopyingFlow(FlowModel):
    """The exact flow of the empirical law of a few images: its samples can only be those images."""

    def __init__(self, train: torch.Tensor) -> None:
        super().__init__()
        # A descriptor only: this "model" has no weights, just the images it memorised.
        self.config = ModelConfig(kind="mlp", data_shape=(1, 8, 8))
        self.register_buffer("memory", train.reshape(len(train), -1).clone())

    def heads(self, x: torch.Tensor, t: torch.Tensor) -> dict[str, torch.Tensor]:
        flat = x.reshape(len(x), -1)
        one_minus = (1 - t).clamp_min(1e-3)[:, None]
        # x_t = (1 - t) x0 + t x_i: given image i, x_t ~ N(t x_i, (1 - t)^2 I).
        d2 = ((flat[:, None, :] - t[:, None, None] * self.memory[None]) ** 2).sum(-1)
        weights = torch.softmax(-d2 / (2 * one_minus**2), dim=1)
        velocity = (weights @ self.memory - flat) / one_minus
        return {"velocity": velocity.view_as(x)}


# ---------------------------------------------------------------- end to end: GFT 0-4 -> 5-9


@pytest.mark.slow
def test_pretraining_from_scratch_draws_the_pretraining_digits():
    """What the shipped digits_pretrained_0-4.pt stands for in the quick tier: a short seeded pretrain."""
    source = DigitsTask("digits:0-4")
    cfg = TrainConfig(method="pretrain", steps=PRETRAIN_STEPS, batch=TEST_BATCH, lr=2e-3, seed=0, device="cpu")
    trainer = make_trainer(source, cfg, model_config=source.model_config(width=TEST_WIDTH))
    trainer.run()
    assert evaluate_images(trainer.model, "digits:0-4", n=300, seed=0).target_fraction > 0.7
    assert evaluate_images(trainer.model, "digits:5-9", n=300, seed=0).target_fraction < 0.3


def _finite(value) -> bool:
    if isinstance(value, dict):
        return all(_finite(v) for v in value.values())
    if isinstance(value, (list, str)):
        return True
    return math.isfinite(value)


def test_gft_moves_samples_to_the_new_classes(digits_gft):
    pretrained, tuned, result = digits_gft
    before = evaluate_images(pretrained, "digits:5-9", n=200, seed=0).to_dict()
    after = evaluate_images(tuned, "digits:5-9", n=200, seed=0).to_dict()
    json.dumps(after)  # JSON-able as the CLI prints it
    assert all(_finite(v) for v in after.values())
    assert before["target_fraction"] < 0.3  # the pretrained model draws 0-4
    assert after["target_fraction"] > 0.7
    assert sum(after["class_fractions"].values()) == pytest.approx(1.0)
    assert after["fd"] < 0.5 * before["fd"]
    assert after["fd_null"]["mean"] < after["fd"] and after["fd_null"]["sd"] > 0
    assert after["fd_by_steps"]["1"] > after["fd_by_steps"]["8"]  # one Euler step of a curved flow is worse
    assert after["class_entropy"] > math.log(5) - 0.3  # the five new digits, not one of them
    assert 0.7 < after["nn_distance_ratio"] < 2.0  # not copying
    assert after["classifier_accuracy"] > 0.9 and after["nfe"] == 100
    history_fd = [row["fd"] for row in result.history if "fd" in row]
    assert len(history_fd) == 2 and history_fd[-1] < history_fd[0]  # the cheap training FD dropped


def test_memorisation_metric_flags_a_copying_model(digits_gft):
    _, tuned, _ = digits_gft
    ten = digit_set(parse_digits_spec("digits:5-9"), "train", limit=10, seed=0)
    copier = CopyingFlow(to_model_scale(ten.pixels))
    copied = evaluate_images(copier, "digits:5-9", n=200, seed=0, limit=10, train_seed=0).to_dict()
    honest = evaluate_images(tuned, "digits:5-9", n=200, seed=0, limit=10, train_seed=0).to_dict()
    assert copied["nn_distance_ratio"] < 0.2
    assert honest["nn_distance_ratio"] > 3 * copied["nn_distance_ratio"]
    assert copied["diversity"] < honest["diversity"]


def test_cli_sample_and_evaluate_an_image_checkpoint(digits_gft, tmp_path, capsys):
    _, tuned, _ = digits_gft
    ckpt = tmp_path / "digits59.pt"
    save_checkpoint(ckpt, tuned, "digits:5-9", TrainConfig(method="gft", seed=0).to_dict(), {"limit": None})
    out, traj = tmp_path / "s.npy", tmp_path / "traj.npy"
    rc = main(["sample", "--model", str(ckpt), "--n", "32", "--solver", "euler", "--steps", "4", "--out", str(out), "--trajectory", str(traj), "--json"])
    assert rc == 0
    x = np.load(out)
    assert x.shape == (32, 8, 8) and x.dtype == np.float32
    assert x.min() >= 0.0 and x.max() <= 16.0 and x.std() > 1.0
    assert np.load(traj).shape == (5, 32, 8, 8)
    capsys.readouterr()
    rc = main(["evaluate", "--model", str(ckpt), "--data", "digits:5-9", "--n", "64", "--json"])
    assert rc == 0
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    for key in ("fd", "fd_null", "class_fractions", "class_entropy", "diversity", "nn_distance_ratio", "fd_by_steps", "nfe", "classifier_accuracy"):
        assert key in report and _finite(report[key]), key
    assert set(report["fd_by_steps"]) == {"1", "2", "4", "8"}


@pytest.mark.parametrize(
    "argv, problem",
    [
        (["--data", "digits:12"], "class 12 is not a digit"),
        (["--data", "digits:0-9+blur"], "unknown transform"),
        (["--data", "digits:7", "--limit", "5000"], "--limit 5000 exceeds"),
    ],
)
def test_cli_bad_image_input_is_one_line(argv, problem, tmp_path, capsys):
    rc = main(["pretrain", *argv, "--steps", "1", "--out", str(tmp_path / "m.pt")])
    err = capsys.readouterr().err.strip()
    assert rc == 1 and problem in err and len(err.splitlines()) == 1
    assert not (tmp_path / "m.pt").exists()


def test_run_chain_fine_tunes_each_stage_from_the_last(monkeypatch):
    from gft.tasks import chains

    seen = []
    real = chains.make_trainer

    def spy(task, config, base=None, **kwargs):
        seen.append(base)
        return real(task, config, base=base, **kwargs)

    monkeypatch.setattr(chains, "make_trainer", spy)
    base = build_model(DigitsTask("digits:0-9").model_config(width=8))
    cfg = TrainConfig(method="gft", steps=2, batch=16, seed=0, device="cpu")
    stages = run_chain(base, ["digits:0-9+invert", "digits:0-9+invert+thicken"], cfg)
    assert [s.data for s in stages] == ["digits:0-9+invert", "digits:0-9+invert+thicken"]
    assert seen[0] is base and seen[1] is stages[0].model
    assert stages[1].model is not stages[0].model and all(s.result.steps == 2 for s in stages)
    with pytest.raises(ValueError, match="unknown transform"):
        run_chain(base, ["digits:0-9+invert", "digits:0-9+blur"], cfg)
    with pytest.raises(ValueError, match="shape"):
        run_chain(base, ["digits:0-9+invert", "moons"], cfg)  # a 2D target for an image model
