"""Shared fixtures and the few helpers that call the library's training and CLI entry points.

Shared fixtures live here only. CLI tests go through :func:`run_cli` (``gft.cli.main`` in this process),
so a change of that entry point is adapted in one place.
"""

import contextlib
import io
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from gft.theory.gaussian import Gaussian

# Small models on a shared 2-core machine: one intra-op thread avoids oversubscription with the OT
# worker thread and the app's background jobs (measured 17 ms vs 200+ ms per step under load). Set at
# import for the session- and module-scoped fixtures (set up before any function fixture), and again
# before every test in case one changed it.
torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _few_threads():
    torch.set_num_threads(1)
    yield


# ---------------------------------------------------------------- library entry points


@dataclass(frozen=True)
class CliRun:
    code: int
    out: str
    err: str


def run_cli(argv: list, capsys=None) -> CliRun:
    """``gft.cli.main(argv)`` in this process: its exit code (argparse's SystemExit included) and output.

    With ``capsys`` the output is read from pytest's capture; without (session fixtures), it is
    redirected here.
    """
    argv = [str(a) for a in argv]
    if capsys is not None:
        capsys.readouterr()
        code = _exit_code(argv)
        captured = capsys.readouterr()
        return CliRun(code, captured.out, captured.err)
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = _exit_code(argv)
    return CliRun(code, out.getvalue(), err.getvalue())


def _exit_code(argv: list[str]) -> int:
    from gft.cli import main as cli_main  # imported here: a broken CLI fails its tests only

    try:
        return cli_main(argv)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else 1


def cli_ok(argv: list, capsys=None) -> str:
    """Run the CLI, require success without a traceback, and return stdout."""
    run = run_cli(argv, capsys)
    assert run.code == 0, run.err
    assert "Traceback" not in run.err
    return run.out


# ---------------------------------------------------------------- Gaussian runs through the CLI

# Two Gaussians far apart (means 4.5 apart, different shapes): the terminal laws of GFT at different
# lambdas, of plain fine-tuning and of the wrong blends are all far from each other (see the tests).
GAUSS_PRE = Gaussian(np.array([-2.0, 1.0]), np.array([[0.4, 0.15], [0.15, 0.3]]))
GAUSS_TARGET = Gaussian(np.array([2.0, -1.0]), np.array([[1.5, -0.5], [-0.5, 1.0]]))
GAUSS_TAU = 3.0  # lambda = 0.75; the wrong mapping 1 / (1 + tau) = 0.25 is far from it
# 1000 Adam steps at lr 1e-3, batch 512: mean and covariance within ~0.02-0.09 of the closed form
# (seeded runs, measured); 600 steps at lr 2e-3 left ~0.17 and made the margins thin.
GAUSS_TRAIN = ["--steps", 1000, "--batch", 512, "--lr", "1e-3", "--eval-every", 0, "--seed", 0, "--json"]


@pytest.fixture(scope="session")
def gaussian_checkpoints(tmp_path_factory) -> dict[str, Path]:
    """Through the CLI: a score-head MLP pretrained on a ``file:`` of GAUSS_PRE samples, then fine-tuned on
    GAUSS_TARGET samples by GFT at ``constant:GAUSS_TAU`` and by standard fine-tuning (about 10 s)."""
    folder = tmp_path_factory.mktemp("gaussians")
    rng = np.random.default_rng(0)
    np.save(folder / "pre.npy", GAUSS_PRE.sample(10_000, rng).astype(np.float32))
    np.save(folder / "target.npy", GAUSS_TARGET.sample(10_000, rng).astype(np.float32))
    paths = {name: folder / f"{name}.pt" for name in ("pre", "gft", "standard")}
    cli_ok(["pretrain", "--data", f"file:{folder / 'pre.npy'}", "--width", 64, "--depth", 2, "--score-head",
            "--out", paths["pre"], *GAUSS_TRAIN])
    tune = ["finetune", "--base", paths["pre"], "--data", f"file:{folder / 'target.npy'}", *GAUSS_TRAIN]
    cli_ok([*tune, "--method", "gft", "--schedule", f"constant:{GAUSS_TAU:g}", "--out", paths["gft"]])
    cli_ok([*tune, "--method", "standard", "--out", paths["standard"]])
    return paths


# ---------------------------------------------------------------- digits


@pytest.fixture(scope="session")
def digits_gft():
    """The shipped digits 0-4 model and a seeded GFT fine-tune of it on 5-9 (300 steps, CPU, ~10 s).

    Starting from the shipped checkpoint skips a pretraining run; pretraining from scratch is covered by
    a slow test in test_images.py.
    """
    from gft.core.checkpoints import load_checkpoint
    from gft.core.training import TrainConfig
    from gft.tasks.digits import DigitsTask
    from gft.tasks.runs import Monitor, make_trainer

    pretrained = load_checkpoint(ROOT / "assets" / "digits_pretrained_0-4.pt").model
    steps = 300
    config = TrainConfig(method="gft", steps=steps, batch=64, lr=2e-3, seed=0, schedule="stages:10,0.5,3", device="cpu")
    trainer = make_trainer(DigitsTask("digits:5-9"), config, base=pretrained, monitor=Monitor(eval_every=steps))
    try:
        result = trainer.run()  # the FD hook runs at step 0 and at the end
    finally:
        trainer.close()
    return pretrained, trainer.model, result
