"""The shipped digits classifier: checked on load, never retrained on first use.

Each broken file (missing, foreign, stale, non-finite) must raise one line naming the problem and the
exact rebuild command; only the slow test trains.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch

from gft.data.digits import parse_digits_spec
from gft.evaluation import classifier as clf

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _no_training(monkeypatch):
    # A load must never fall back to training; this makes any such attempt fail loudly.
    def refuse(*args, **kwargs):
        raise AssertionError("load_classifier trained the classifier")

    monkeypatch.setattr(clf, "train_classifier", refuse)


def _shipped_model() -> clf.DigitClassifier:
    return clf.read_classifier(clf.DEFAULT_PATH)


def _load_error(path: Path, match: str) -> str:
    with pytest.raises(clf.ClassifierFileError, match=match) as info:
        clf.load_classifier(path)
    message = str(info.value)
    assert isinstance(info.value, ValueError)
    assert "\n" not in message and str(path.resolve()) in message
    assert message.endswith(f"rebuild it with: {clf.REBUILD_COMMAND} --classifier-path {path.resolve()}")
    return message


def test_shipped_classifier_passes_the_check():
    model = clf.load_classifier()
    assert model is clf.load_classifier()  # checked once per process
    assert not model.training
    assert all(torch.isfinite(t).all() for t in model.state_dict().values())


def test_rebuild_command_for_the_shipped_path_is_the_documented_one():
    assert clf.rebuild_command(clf.DEFAULT_PATH) == "python scripts/make_digits_assets.py --classifier-only"
    assert "--classifier-only" in (ROOT / "scripts" / "make_digits_assets.py").read_text()


def test_missing_file_names_the_rebuild_command(tmp_path):
    path = tmp_path / "absent.pt"
    _load_error(path, "is missing")
    assert not path.exists()  # nothing was written in its place


def test_wrong_format_names_the_rebuild_command(tmp_path):
    foreign = tmp_path / "foreign.pt"
    torch.save({"weights": torch.zeros(3)}, foreign)
    _load_error(foreign, "not a digits classifier file")
    other = tmp_path / "other.pt"
    torch.save({"meta": '{"format": "gft-checkpoint"}', "state_dict": {}}, other)
    _load_error(other, "format 'gft-checkpoint', expected 'gft-digits-classifier'")
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a torch file")
    _load_error(garbage, "cannot be read as a torch file")


def test_stale_version_names_the_rebuild_command(tmp_path, monkeypatch):
    path = tmp_path / "stale.pt"
    clf.save_classifier(_shipped_model(), path)
    monkeypatch.setattr(clf, "VERSION", clf.VERSION + 1)  # as if the recipe changed after the file was built
    _load_error(path, "is stale")


def test_non_finite_weights_name_the_rebuild_command(tmp_path):
    model = _shipped_model()
    with torch.no_grad():
        model.digit.weight[0, 0] = float("nan")
    path = tmp_path / "nan.pt"
    clf.save_classifier(model, path)
    _load_error(path, r"non-finite weights in digit\.weight")


def test_weights_of_another_shape_name_the_rebuild_command(tmp_path):
    path = tmp_path / "shape.pt"
    clf.save_classifier(_shipped_model(), path)
    raw = torch.load(path, weights_only=True)
    raw["state_dict"]["digit.weight"] = torch.zeros(3, 3)
    torch.save(raw, path)
    _load_error(path, "do not fit the architecture")


def test_a_failed_load_is_not_cached(tmp_path):
    path = tmp_path / "later.pt"
    _load_error(path, "is missing")
    clf.save_classifier(_shipped_model(), path)  # what the rebuild command would write
    assert isinstance(clf.load_classifier(path), clf.DigitClassifier)


def _script():
    spec = importlib.util.spec_from_file_location("make_digits_assets", ROOT / "scripts" / "make_digits_assets.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_model_build_stops_before_training_on_a_broken_classifier(monkeypatch, capsys):
    module = _script()

    def broken(path=clf.DEFAULT_PATH):
        raise clf.ClassifierFileError(f"digits classifier {path} is missing; rebuild it with: {clf.REBUILD_COMMAND}")

    monkeypatch.setattr(module.classifier, "load_classifier", broken)
    monkeypatch.setattr(module, "make", lambda *a: pytest.fail("trained a model with a broken classifier"))
    with pytest.raises(SystemExit) as exc:
        module.main(["0-4"])
    assert exc.value.code == 1 and clf.REBUILD_COMMAND in capsys.readouterr().err


def test_classifier_only_refuses_model_names():
    with pytest.raises(SystemExit) as exc:
        _script().main(["--classifier-only", "0-4"])
    assert exc.value.code == 2


@pytest.mark.slow
def test_rebuild_command_writes_a_classifier_that_passes_the_check(tmp_path, monkeypatch):
    monkeypatch.undo()  # this test is the one that trains
    path = tmp_path / "rebuilt.pt"
    assert _script().main(["--classifier-only", "--classifier-path", str(path)]) == 0
    model = clf.load_classifier(path)
    assert clf.accuracy(model, parse_digits_spec("digits:0-9")) > 0.9
