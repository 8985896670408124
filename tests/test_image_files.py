"""User image sets (``images:`` specs): the spec, validation at the boundary, layouts and ranges round
trip, labels and class subsets, the split, the task, and the 28x28 path end to end through the CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from gft.cli import main
from gft.core.checkpoints import load_checkpoint
from gft.data.image_files import (
    ImageFileSpec,
    ImageScaling,
    image_parts,
    image_set_from_bytes,
    load_image_set,
    parse_image_spec,
    split_indices,
    validate_images,
)
from gft.evaluation.result import Evaluation
from gft.tasks.image_files import ImageFileTask, default_model_size
from gft.tasks.runs import task_for


def shapes(n: int, side: int = 28, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A synthetic labelled set of uint8 (n, side, side) images: 0 squares, 1 discs, 2 horizontal bars."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:side, :side]
    images = np.zeros((n, side, side), np.uint8)
    labels = np.arange(n) % 3
    for i, label in enumerate(labels):
        r = rng.integers(side // 6, side // 3)
        cy, cx = rng.integers(r, side - r, size=2)
        if label == 0:
            mask = (abs(yy - cy) <= r) & (abs(xx - cx) <= r)
        elif label == 1:
            mask = (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r
        else:
            mask = (abs(yy - cy) <= 2) & (abs(xx - cx) <= 2 * r)
        images[i][mask] = rng.integers(160, 256)
    return images, labels


@pytest.fixture()
def labelled(tmp_path):
    x, y = shapes(60)
    path = tmp_path / "shapes.npz"
    np.savez(path, x=x, y=y)
    return path


# ---- the spec ---------------------------------------------------------------------------------------
def test_specs_parse_and_print_back():
    spec = parse_image_spec("images:data/s.npz#x,y:0-2,5")
    assert spec == ImageFileSpec("data/s.npz", "x", "y", (0, 1, 2, 5))
    assert spec.text == "images:data/s.npz#x,y:0,1,2,5"
    assert parse_image_spec("images:a.npy") == ImageFileSpec("a.npy")
    assert parse_image_spec("images:a.npz#train").images_key == "train"


@pytest.mark.parametrize("text, message", [
    ("images:a.png", "must be .npy or .npz"),
    ("images:a.npy#x", "a .npy file holds one array"),
    ("images:a.npz#x:0-4", "classes need labels"),
    ("images:a.npz#x,y:", "no classes after"),
    ("images:a.npz#x,y:4-2", "runs backwards"),
    ("images:a.npz#x,y:1000", "class 1000 is not a class"),
    ("images:a.npz#1x", "name the images array"),
    ("digits:0-4", "must start with 'images:'"),
])  # fmt: skip
def test_bad_specs_are_refused_in_one_line(text, message):
    with pytest.raises(ValueError, match=message) as info:
        parse_image_spec(text)
    assert "\n" not in str(info.value)


# ---- validation ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("array, message", [
    (np.zeros((10, 28)), "expected N x H x W"),
    (np.zeros((10, 2, 28, 28)), "expected N x H x W"),
    (np.zeros((10, 6, 6)), "8 to 64 pixels a side"),
    (np.zeros((10, 65, 65)), "8 to 64 pixels a side"),
    (np.zeros((7, 28, 28)), "need 8 to"),
    (np.full((10, 28, 28), np.nan), "hold NaN or infinite"),
    (np.full((10, 28, 28), 3.0), "needs contrast"),
    (np.arange(10 * 64).reshape(10, 8, 8) * 1e4, "within"),
    (np.arange(10 * 64, dtype=np.int64).reshape(10, 8, 8), "integer images must lie in 0-255"),
    (np.zeros((10, 8, 8), bool), "must be uint8 or float"),
    (np.zeros((10, 8, 8), "U1"), "must be uint8 or float"),
])  # fmt: skip
def test_bad_arrays_are_refused_naming_the_file(array, message):
    with pytest.raises(ValueError, match=message) as info:
        validate_images(array, "f.npy")
    assert str(info.value).startswith("f.npy: ") and "\n" not in str(info.value)


@pytest.mark.parametrize("layout, make, shape", [
    ("NHW", lambda a: a[:, 0], (1, 12, 10)),
    ("NCHW", lambda a: a, (3, 12, 10)),
    ("NHWC", lambda a: a.transpose(0, 2, 3, 1), (3, 12, 10)),
    ("NHWC", lambda a: a[:, :1].transpose(0, 2, 3, 1), (1, 12, 10)),
])  # fmt: skip
@pytest.mark.parametrize("dtype, low, high", [(np.uint8, 0, 255), (np.float32, 0, 1), (np.float64, -1, 1), (np.float32, -5, 20)])
def test_layouts_and_ranges_round_trip(layout, make, shape, dtype, low, high):
    rng = np.random.default_rng(0)
    base = rng.uniform(low, high, size=(9, 3, 12, 10))
    base[0, 0, 0, :2] = low, high  # the observed range is the full one
    array = make(base).astype(dtype) if dtype != np.uint8 else make(base).round().astype(np.uint8)
    x, scaling = validate_images(array, "f")
    assert scaling.layout == layout and scaling.shape == shape and x.shape == (9, *shape)
    assert x.dtype == torch.float32 and float(x.min()) >= -1 - 1e-6 and float(x.max()) <= 1 + 1e-6
    assert (scaling.low, scaling.high) == (low, high) and scaling.integer == (dtype == np.uint8)
    back = scaling.to_file(x).numpy()
    assert back.shape == array.shape
    np.testing.assert_allclose(back, array.astype(np.float32), rtol=1e-5, atol=1e-4 * (high - low))
    # Beyond the range is clamped; leading dimensions (a trajectory) are kept.
    beyond = scaling.to_file(torch.full((2, 4, *shape), 3.0))
    assert beyond.shape[:2] == (2, 4) and float(beyond.max()) == high
    assert ImageScaling.from_dict(json.loads(json.dumps(scaling.to_dict()))) == scaling


def test_labels_class_subsets_and_the_split(labelled):
    data = load_image_set(parse_image_spec(f"images:{labelled}#x,y"))
    assert data.labels.tolist() == (np.arange(60) % 3).tolist()
    train, held = split_indices(data.labels, len(data))
    assert len(held) == 18 and not set(train) & set(held)
    assert np.bincount(data.labels.numpy()[held]).tolist() == [6, 6, 6]  # 30 % of every class
    np.testing.assert_array_equal(split_indices(data.labels, len(data))[1], held)  # fixed, whatever the run
    tr, he = image_parts(data, parse_image_spec(f"images:{labelled}#x,y:1"))
    assert set(tr.labels.tolist()) == set(he.labels.tolist()) == {1} and (len(tr), len(he)) == (14, 6)
    # A class subset's held-out images are the file's held-out images of that class: never another subset's training images.
    tr0, _ = image_parts(data, parse_image_spec(f"images:{labelled}#x,y:0,2"))
    assert not {tuple(im.flatten().tolist()) for im in tr0.images} & {tuple(im.flatten().tolist()) for im in he.images}
    with pytest.raises(ValueError, match=r"no images of class\(es\) \[7\]"):
        image_parts(data, parse_image_spec(f"images:{labelled}#x,y:7"))


@pytest.mark.parametrize("arrays, spec, message", [
    ({"x": np.zeros((9, 8, 8), np.uint8), "z": np.zeros(9)}, "images:f.npz", "name the images one"),
    ({"x": np.zeros((9, 8, 8), np.uint8)}, "images:f.npz#img", "no images array 'img'"),
    ({"x": np.eye(8)[None].repeat(9, 0), "y": np.zeros(8)}, "images:f.npz#x,y", "one integer per image"),
    ({"x": np.eye(8)[None].repeat(9, 0), "y": np.full(9, 0.5)}, "images:f.npz#x,y", "whole numbers"),
    ({"x": np.eye(8)[None].repeat(9, 0), "y": np.full(9, -1)}, "images:f.npz#x,y", "labels must lie in 0-999"),
])  # fmt: skip
def test_npz_arrays_and_labels_are_checked(tmp_path, arrays, spec, message):
    path = tmp_path / "f.npz"
    np.savez(path, **arrays)
    with pytest.raises(ValueError, match=message):
        load_image_set(parse_image_spec(spec.replace("f.npz", str(path))))


def test_uploads_go_through_the_same_checks(labelled):
    payload = labelled.read_bytes()
    data = image_set_from_bytes(payload, "shapes.npz", parse_image_spec("images:shapes.npz#x,y"))
    assert data.images.shape == (60, 1, 28, 28) and data.labels is not None
    with pytest.raises(ValueError, match="shapes.npz: not a valid .npz file"):
        image_set_from_bytes(b"garbage", "shapes.npz", parse_image_spec("images:shapes.npz#x,y"))
    with pytest.raises(ValueError, match="must be .npy or .npz"):
        image_set_from_bytes(payload, "shapes.csv", parse_image_spec("images:shapes.npz#x,y"))
    pickled = np.array([{"a": 1}] * 9, dtype=object)
    import io

    buf = io.BytesIO()
    np.save(buf, pickled, allow_pickle=True)
    with pytest.raises(ValueError, match="not a valid .npy file"):
        image_set_from_bytes(buf.getvalue(), "evil.npy", parse_image_spec("images:evil.npy"))


def test_missing_file_is_one_line(tmp_path):
    with pytest.raises(ValueError, match="image file not found"):
        task_for(f"images:{tmp_path}/none.npy").pool(0)


# ---- the task -------------------------------------------------------------------------------------------
def test_default_model_sizes():
    assert default_model_size((1, 8, 8)) == (16, 1)  # the digits' convnet
    assert default_model_size((1, 28, 28)) == (32, 1)
    assert default_model_size((3, 32, 32)) == (32, 2)
    assert default_model_size((3, 64, 64)) == (48, 2)


def test_the_task_needs_no_file_to_write_samples_when_the_scaling_is_recorded(labelled, tmp_path):
    task = task_for(f"images:{labelled}#x,y:0-1")
    assert isinstance(task, ImageFileTask) and task.kind == "images" and task.data_shape == (1, 28, 28)
    assert task.model_config(width=8).data_shape == (1, 28, 28) and task.model_config().width == 32
    assert task.pool(0).shape == (28, 1, 28, 28) and task.pool(0, limit=5).shape == (5, 1, 28, 28)
    info = json.loads(json.dumps(task.output_info()))
    gone = task_for(f"images:{tmp_path}/gone.npz#x,y", output=info)
    out = gone.to_output(torch.zeros(3, 1, 28, 28))
    assert out.shape == (3, 28, 28) and float(out[0, 0, 0]) == 128.0  # 127.5 rounded half to even: whole values
    with pytest.raises(ValueError, match="holds no image scaling"):
        task_for("images:x.npy", output={"other": 1})


def test_unlabelled_evaluation_uses_random_features_and_says_so(tmp_path):
    x, _ = shapes(30, side=12)
    np.save(tmp_path / "s.npy", x)
    task = task_for(f"images:{tmp_path}/s.npy")
    from gft.core.models import build_seeded

    ev = task.evaluate(build_seeded(task.model_config(width=8), 0), n=12)
    assert isinstance(ev, Evaluation) and ev.feature_dim == 64 and ev.class_fractions is None
    assert any("random convolutional features" in note for note in ev.notes)
    assert "class_fractions" in ev.to_dict() and ev.to_dict()["classifier_accuracy"] is None


# ---- the CLI end to end ---------------------------------------------------------------------------------
def _cli(args: list[str], capsys) -> dict:
    assert main(args + ["--json"]) == 0, capsys.readouterr().err
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def test_cli_trains_and_samples_an_8x8_file_quickly(tmp_path, capsys):
    x, _ = shapes(24, side=8)
    np.save(tmp_path / "s.npy", x.astype(np.float32) / 255.0)
    ckpt = tmp_path / "m.pt"
    _cli(["pretrain", "--data", f"images:{tmp_path}/s.npy", "--steps", "3", "--batch", "8", "--width", "8", "--eval-every", "0", "--out", str(ckpt)], capsys)
    assert load_checkpoint(ckpt).extra["output"]["scaling"]["layout"] == "NHW"
    summary = _cli(["sample", "--model", str(ckpt), "--n", "5", "--solver", "euler", "--steps", "2", "--out", str(tmp_path / "s_out.npy")], capsys)
    out = np.load(tmp_path / "s_out.npy")
    assert summary["shape"] == [5, 8, 8] and out.shape == (5, 8, 8) and 0.0 <= out.min() and out.max() <= 1.0


@pytest.mark.slow
def test_cli_28x28_end_to_end(labelled, tmp_path, capsys):
    """pretrain on two classes, GFT to the third, sample in the file's layout and range, evaluate."""
    base, tuned, samples = tmp_path / "base.pt", tmp_path / "gft.pt", tmp_path / "samples.npy"
    common = ["--steps", "4", "--batch", "8", "--eval-every", "2"]
    pre = _cli(["pretrain", "--data", f"images:{labelled}#x,y:0-1", "--width", "8", *common, "--out", str(base)], capsys)
    assert "fd" in pre["history"][-1] and load_checkpoint(base).model.config.data_shape == (1, 28, 28)
    _cli(["finetune", "--base", str(base), "--data", f"images:{labelled}#x,y:2", "--schedule", "linear:2", *common, "--out", str(tuned)], capsys)
    labelled.unlink()  # sample needs only the checkpoint
    s = _cli(["sample", "--model", str(tuned), "--n", "6", "--solver", "euler", "--steps", "3", "--out", str(samples), "--trajectory", str(tmp_path / "traj.npy")], capsys)
    out = np.load(samples)
    assert s["shape"] == [6, 28, 28] and np.load(tmp_path / "traj.npy").shape == (4, 6, 28, 28)
    assert out.min() >= 0 and out.max() <= 255 and np.array_equal(out, out.round())
    np.savez(labelled, **dict(zip(("x", "y"), shapes(60))))
    ev = _cli(["evaluate", "--model", str(tuned), "--data", f"images:{labelled}#x,y:2", "--n", "12"], capsys)
    assert ev["feature_dim"] == 32 and set(ev["class_fractions"]) == {"0", "1", "2"} and ev["fd"] >= 0
    assert any("classifier trained on the file's labels" in note for note in ev["notes"])


def test_cli_refuses_bad_image_data_in_one_line(tmp_path, capsys):
    np.save(tmp_path / "bad.npy", np.zeros((5, 28, 28), np.uint8))
    assert main(["pretrain", "--data", f"images:{tmp_path}/bad.npy", "--steps", "1", "--out", str(tmp_path / "m.pt")]) == 1
    err = capsys.readouterr().err.strip()
    assert "need 8 to" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "m.pt").exists()
