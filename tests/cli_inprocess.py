"""Run ``gft.cli.main`` in-process (quick tier) and collect what a user would see."""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch

from gft.cli import main


@dataclass
class CliRun:
    code: int
    out: str
    err: str

    @property
    def err_lines(self) -> list[str]:
        return [line for line in self.err.splitlines() if line.strip()]


def run_main(argv: list[str], capsys) -> CliRun:
    """``main(argv)`` with argparse's SystemExit turned into the exit code it carries.

    Warnings count as stderr lines: pytest would otherwise swallow what a user sees on a terminal.
    """
    capsys.readouterr()  # drop anything printed before
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            code = main([str(a) for a in argv])
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
    captured = capsys.readouterr()
    shown = "".join(f"{w.category.__name__}: {w.message}\n" for w in caught)
    return CliRun(code, captured.out, captured.err + shown)


def assert_one_line_refusal(run: CliRun, *needles: str) -> str:
    """A refusal: non-zero exit, exactly one stderr line starting with 'gft', no traceback."""
    assert run.code != 0, (run.out, run.err)
    assert "Traceback" not in run.err and "Traceback" not in run.out
    assert len(run.err_lines) == 1, run.err
    line = run.err_lines[0]
    assert line.startswith("gft"), line
    for needle in needles:
        assert needle in line, line
    return line


def rewrite_checkpoint(src: Path, dst: Path, meta=None, state=None) -> Path:
    """Re-save a checkpoint with its metadata and/or weights changed (as an attacker or a bug would)."""
    raw = torch.load(src, weights_only=True)
    if meta is not None:
        raw["meta"] = meta(json.loads(raw["meta"]))
    if state is not None:
        state(raw["state_dict"])
    torch.save(raw, dst)
    return dst
