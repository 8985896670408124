"""What every robustness check shares: its result row and how it starts a subprocess of this repository."""

from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CLI_TIMEOUT = 180  # seconds for one CLI call on a busy 2-core machine


def result(check: str, passed: bool, message: str) -> dict:
    """One check's row in the results: a name, pass or fail, and the message that says why."""
    return {"check": check, "passed": bool(passed), "message": message}


def subprocess_env() -> dict:
    """This environment with the repository importable, unbuffered output and one OpenMP thread.

    One thread: on a shared 2-core machine, two-thread torch processes spend their time contending.
    """
    env = dict(os.environ, PYTHONUNBUFFERED="1", OMP_NUM_THREADS="1")
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return env
