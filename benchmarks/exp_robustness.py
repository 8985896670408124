"""Robustness, measured with the suite: bad data through the CLI, interrupted runs, concurrent sessions
(the last in :mod:`benchmarks.sessions`).

Each check returns ``{"check", "passed", "message"}``; a failed check is recorded, never raised.
"""

from __future__ import annotations

import hashlib
import os
import resource
import selectors
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from benchmarks import sessions
from benchmarks.checks import CLI_TIMEOUT, REPO, result, subprocess_env
from benchmarks.common import MODEL
from benchmarks.settings import Settings
from gft.core.models import build_seeded
from gft.core.training import TrainConfig, Trainer
from gft.data import sample_distribution

NAME = "robustness"
def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _gft(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "gft", *args], cwd=REPO, env=subprocess_env(), capture_output=True, text=True,
                          timeout=CLI_TIMEOUT, stdin=subprocess.DEVNULL)


def _temp_files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


def _bad_files(folder: Path) -> dict[str, Path]:
    rng = np.random.default_rng(0)
    good = rng.normal(size=(50, 2)).astype(np.float32)
    nan = good.copy()
    nan[[3, 17, 41]] = np.nan
    files = {"NaN rows (.npy)": folder / "nan_rows.npy", "one repeated point (.csv)": folder / "repeated.csv",
             "empty file (.csv)": folder / "empty.csv", "empty file (.npy)": folder / "empty.npy",
             "wrong shape N x 3 (.npy)": folder / "wrong_shape.npy"}
    np.save(files["NaN rows (.npy)"], nan)
    files["one repeated point (.csv)"].write_text("x,y\n" + "1.5,-0.25\n" * 50)
    files["empty file (.csv)"].write_text("")
    files["empty file (.npy)"].write_bytes(b"")
    np.save(files["wrong shape N x 3 (.npy)"], rng.normal(size=(50, 3)))
    return files


def make_base(folder: Path) -> float:
    """Pretrain a small base checkpoint via the CLI; returns the CPU seconds the whole process used.

    That process is mostly imports and setup (30 steps take a fraction of a second), so it calibrates
    when a later CLI run must be past its setup and training.
    """
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    made = _gft("pretrain", "--data", "gaussian", "--steps", "30", "--eval-every", "0", "--out", str(folder / "base.pt"),
                "--json")
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if made.returncode != 0 or not (folder / "base.pt").is_file():
        lines = [ln for ln in made.stderr.splitlines() if ln.strip()]
        raise RuntimeError(f"the CLI could not pretrain a base checkpoint: {lines[-1] if lines else made.returncode}")
    return (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)


def _bad_data_case(base: Path, what: str, path: Path, folder: Path) -> dict:
    out = folder / "out.pt"
    shutil.copyfile(base, out)  # the "earlier checkpoint" a bad run must not touch
    before = _sha(out)
    run = _gft("finetune", "--base", str(base), "--data", f"file:{path}", "--steps", "20", "--out", str(out))
    lines = [ln for ln in run.stderr.splitlines() if ln.strip()]
    message = lines[-1] if lines else "(no message)"
    problems = []
    if run.returncode == 0:
        problems.append("exit status 0")
    if len(lines) != 1 or not lines[0].startswith("gft finetune: error:"):
        problems.append(f"expected one 'gft finetune: error:' line, got {len(lines)} line(s)")
    if "Traceback" in run.stderr:
        problems.append("a traceback was printed")
    if _sha(out) != before:
        problems.append("--out was modified")
    if _temp_files(folder):
        problems.append(f"temp files left: {_temp_files(folder)}")
    return result(f"cli bad data: {what}", not problems, "; ".join(problems) or message)


def cli_bad_data(folder: Path) -> list[dict]:
    """Fine-tuning on bad files stops with one clear line and leaves the earlier checkpoint byte-identical.

    The cases run as concurrent processes (each in its own folder): their cost is mostly imports.
    """
    base = folder / "base.pt"
    cases = []
    for i, (what, path) in enumerate(_bad_files(folder).items()):
        sub = folder / f"bad_{i}"
        sub.mkdir()
        cases.append((what, path, sub))
    with ThreadPoolExecutor(len(cases)) as pool:
        return list(pool.map(lambda c: _bad_data_case(base, *c), cases))


def _cpu_seconds(pid: int) -> float | None:
    """CPU time a live process has used (Linux /proc), or None where unreadable."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _finetune_cmd(base: Path, out: Path, quiet: bool) -> list[str]:
    cmd = [sys.executable, "-m", "gft", "finetune", "--base", str(base), "--data", "8gaussians", "--steps", "200000",
           "--eval-every", "0", "--out", str(out)]
    return cmd + (["--json"] if quiet else [])


def _wait_for_progress(proc: subprocess.Popen) -> str | None:
    """The first progress line past step 0, or None if the run ended or stalled first."""
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    deadline = time.monotonic() + CLI_TIMEOUT
    try:
        while time.monotonic() < deadline:
            if not sel.select(timeout=1.0):
                if proc.poll() is not None:
                    return None
                continue
            line = proc.stdout.readline()
            if not line:
                return None
            parts = line.split()
            if len(parts) > 1 and parts[0] == "step" and not parts[1].startswith("0/"):
                return line.strip()
    finally:
        sel.close()
    return None


def _wait_for_cpu(proc: subprocess.Popen, seconds: float) -> str | None:
    """Wait until the process has used ``seconds`` of CPU (well past imports and setup: it is training)."""
    deadline = time.monotonic() + CLI_TIMEOUT
    while time.monotonic() < deadline and proc.poll() is None:
        used = _cpu_seconds(proc.pid)
        if used is None:  # no /proc: fall back to wall time
            time.sleep(seconds * 2)
            return f"{seconds * 2:.0f} s after start"
        if used >= seconds:
            return f"after {used:.1f} s of CPU time"
        time.sleep(0.2)
    return None


def _kill_mid_training(base: Path, out: Path, log: Path, quiet: bool, setup_cpu: float) -> tuple[bool, str]:
    """Start a long fine-tune and SIGKILL it mid-training; True if it was still training when killed.

    With progress lines the kill follows the first line past step 0; with --json (no progress), it
    follows the CPU time of a whole short CLI run (``setup_cpu``) plus 3 s: hundreds of steps in.
    """
    with open(log, "w") as err:
        proc = subprocess.Popen(_finetune_cmd(base, out, quiet), cwd=REPO, env=subprocess_env(), stdout=subprocess.PIPE,
                                stderr=err, stdin=subprocess.DEVNULL, text=True)
        try:
            seen = _wait_for_cpu(proc, setup_cpu + 3.0) if quiet else _wait_for_progress(proc)
            alive = proc.poll() is None
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait(30)
            proc.stdout.close()
    if seen and alive:
        return True, seen
    lines = [ln for ln in log.read_text().splitlines() if ln.strip()]
    return False, f"the run ended before it was killed (exit {proc.returncode}): {lines[-1] if lines else 'no message'}"


def _sigkill_case(base: Path, folder: Path, case: str, quiet: bool, existing: bool, setup_cpu: float) -> dict:
    out = folder / "out.pt"
    if existing:
        shutil.copyfile(base, out)
    before = _sha(out) if out.exists() else None
    trained, seen = _kill_mid_training(base, out, folder / "stderr.log", quiet, setup_cpu)
    problems = [] if trained else [seen]
    if before is None and out.exists():
        problems.append("--out appeared after the kill")
    if before is not None and (not out.exists() or _sha(out) != before):
        problems.append("the earlier --out changed or vanished")
    if _temp_files(folder):
        problems.append(f"temp files left: {_temp_files(folder)}")
    return result(f"cli SIGKILL mid-training, {case}", not problems,
                   "; ".join(problems) or f"killed {seen}; --out intact, no temp files")


def cli_sigkill(folder: Path, setup_cpu: float) -> list[dict]:
    """A fine-tune killed mid-training leaves --out as it was (absent or the old file) and no temp file."""
    base = folder / "base.pt"
    cases = (("progress output, existing --out", False, True), ("--json, existing --out", True, True),
             ("--json, absent --out", True, False))
    subs = []
    for i in range(len(cases)):
        subs.append(folder / f"kill_{i}")
        subs[-1].mkdir()
    with ThreadPoolExecutor(len(cases)) as pool:
        return list(pool.map(lambda c: _sigkill_case(base, c[0], *c[1], setup_cpu), zip(subs, cases)))


def stop_event(folder: Path) -> dict:
    """A stop event mid-way ends the run at that step, closes the OT prefetch thread and writes nothing."""
    pool = sample_distribution("8gaussians", 4000, 0)
    config = TrainConfig(method="gft", steps=1000, batch=128, seed=0, coupling="ot", callback_every=10,
                         device="cpu")
    threads_before = {t.ident for t in threading.enumerate()}
    stop = threading.Event()
    trainer = Trainer(pool, config, pretrained=build_seeded(MODEL, 1))

    def on_snapshot(snap) -> None:
        if snap.step >= 50:
            stop.set()

    outcome = trainer.run(stop_event=stop, callback=on_snapshot)
    time.sleep(0.1)
    leftover = [t.name for t in threading.enumerate() if t.ident not in threads_before and t.is_alive()]
    finite = all(bool(p.detach().isfinite().all()) for p in trainer.model.parameters())
    problems = []
    if not outcome.stopped or outcome.steps != 50:
        problems.append(f"expected a stopped run at step 50, got stopped={outcome.stopped} at step {outcome.steps}")
    if leftover:
        problems.append(f"threads left running: {leftover}")
    if not finite:
        problems.append("weights became non-finite")
    if any(folder.iterdir()):
        problems.append(f"files written: {[p.name for p in folder.iterdir()]}")
    return result("stop event mid-way (Trainer.run)", not problems,
                   "; ".join(problems) or "stopped at step 50 of 1000, prefetch thread closed, nothing written")


def run(settings: Settings) -> dict:
    checks: list[dict] = []
    page = REPO / "pages" / "4_compare_couplings.py"
    app_check = settings.mode == "full" and page.is_file()
    with tempfile.TemporaryDirectory(prefix="gft-bench-") as tmp:
        cli_dir, stop_dir = Path(tmp) / "cli", Path(tmp) / "stop"
        cli_dir.mkdir()
        stop_dir.mkdir()
        setup_cpu: list[float] = []
        for name, fn in (("cli base checkpoint", lambda: setup_cpu.append(make_base(cli_dir)) or []),
                         ("cli bad data", lambda: cli_bad_data(cli_dir) if setup_cpu else []),
                         ("cli SIGKILL", lambda: cli_sigkill(cli_dir, setup_cpu[0]) if setup_cpu else []),
                         ("stop event", lambda: [stop_event(stop_dir)]),
                         ("concurrent sessions", lambda: sessions.concurrent_sessions(settings, settings.threads)),
                         ("concurrent sessions, every core", lambda: sessions.concurrent_sessions(settings, os.cpu_count() or 1)
                          if (os.cpu_count() or 1) != settings.threads else []),
                         ("app sessions", lambda: sessions.app_sessions(settings) if app_check else [])):
            try:
                checks.extend(fn())
            except Exception as exc:  # a crashing check is a failed check, with its reason
                checks.append(result(name, False, f"{type(exc).__name__}: {exc}"))
    note = ("concurrency checked with two gft.app.jobs.TrainingJob in parallel threads of one process (the engine "
            "behind the app's training pages, as two sessions of one server would run it)")
    if app_check:
        note += ("; and end to end with streamlit.testing.v1.AppTest on pages/4_compare_couplings.py, one process per "
                 "session: AppTest gives every instance the same session id, so two instances in one process share the "
                 "session-scoped job slot (the second Start replaces the first job) and cannot stand for two sessions")
    elif page.is_file():
        note += "; the AppTest check of two app sessions runs in full mode only (it takes minutes)"
    else:
        note += "; no couplings page existed, so no AppTest check"
    return {"checks": checks, "passed": sum(c["passed"] for c in checks), "total": len(checks), "note": note}
