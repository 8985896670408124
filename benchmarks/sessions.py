"""Concurrent sessions: two trainings at once must each give the results of a solo run.

Two checks: two :class:`gft.app.jobs.TrainingJob` threads in one process (as two sessions of one app
server run them), and two AppTest sessions of the couplings page, one process each (AppTest gives
every instance the same session id, so one process cannot hold two sessions).
"""

from __future__ import annotations

import json
import subprocess
import sys

import torch

from benchmarks.checks import CLI_TIMEOUT, REPO, result, subprocess_env
from benchmarks.common import MODEL
from benchmarks.settings import Settings
from gft.app.jobs import TrainingJob
from gft.constants import HELDOUT_SEED_OFFSET
from gft.core.models import build_seeded
from gft.core.training import Hook, TrainConfig, Trainer
from gft.data import sample_distribution
from gft.evaluation.monitors import heldout_w2


def _session_trainer(seed: int, steps: int):
    pool = sample_distribution("8gaussians", 4000, seed + 100)
    held_out = sample_distribution("8gaussians", 300, seed + HELDOUT_SEED_OFFSET)
    config = TrainConfig(method="gft", steps=steps, batch=128, seed=seed, schedule="stages:10,0.5,5",
                         callback_every=steps // 4, device="cpu")
    w2 = Hook("w2", steps // 4, heldout_w2(held_out, 300, seed))
    return Trainer(pool, config, pretrained=build_seeded(MODEL, 1000), hooks=[w2])


def concurrent_sessions(settings: Settings, threads: int) -> list[dict]:
    """Two jobs training at once (as two app sessions would) against solo runs of the same seeds.

    Two checks: both finish with a final W2 within 10% of the solo run's (correct results), and
    their loss and W2 histories are bitwise identical to the solo runs' (determinism).
    """
    steps = 400 if settings.mode == "full" else 100
    seeds = (0, 1)
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        jobs = [TrainingJob({"run": lambda s=s: _session_trainer(s, steps)}) for s in seeds]
        for job in jobs:
            job.start()
        finished = all(job.wait(600) for job in jobs)
        views = [job.view() for job in jobs]
        for job in jobs:
            job.close()
        solos = []
        for seed in seeds:
            solo = _session_trainer(seed, steps)
            solo.run(callback=lambda snap: None)
            solo.close()
            solos.append(solo.history)
    finally:
        torch.set_num_threads(before)
    states = [v.state for v in views]
    close, same, notes = [], [], []
    for seed, view, alone in zip(seeds, views, solos):
        ours = list(view.run("run").history)
        w2_alone = alone[-1].get("w2")
        w2_ours = ours[-1].get("w2") if ours else None
        close.append(w2_ours is not None and abs(w2_ours - w2_alone) <= 0.1 * w2_alone)
        pairs = [(a["loss"], b["loss"]) for a, b in zip(ours, alone) if a["loss"] is not None and b["loss"] is not None]
        same.append([(h["loss"], h.get("w2")) for h in ours] == [(h["loss"], h.get("w2")) for h in alone])
        diff = max((abs(a - b) for a, b in pairs), default=float("nan"))
        notes.append(f"seed {seed}: final W2 {w2_ours if w2_ours is None else round(w2_ours, 4)} side by side, "
                     f"{w2_alone:.4f} alone, max loss difference {diff:.3g}")
    label = f"two sessions training at once, {threads} torch thread(s)"
    ended = "" if finished and states == ["done", "done"] else f"jobs ended as {states}; "
    return [
        result(f"{label}: both finish, final W2 within 10% of solo runs", not ended and all(close), ended + "; ".join(notes)),
        result(f"{label}: history identical to solo runs", not ended and all(same),
                ended + ("identical" if all(same) else "differs: " + "; ".join(notes))),
    ]


def _app_session(seed: int, steps: int) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "benchmarks.app_session", "--seed", str(seed), "--steps", str(steps)],
                            cwd=REPO, env=subprocess_env(), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            stdin=subprocess.DEVNULL, text=True)


def _session_rows(proc: subprocess.Popen) -> tuple[list[dict] | None, str]:
    try:
        out, _ = proc.communicate(timeout=2 * CLI_TIMEOUT + 120)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        return None, "timed out"
    lines = [ln for ln in out.splitlines() if ln.startswith("{")]
    if not lines:
        return None, f"no result (exit {proc.returncode})"
    payload = json.loads(lines[-1])
    return payload.get("rows"), payload.get("error", "")


def app_sessions(settings: Settings) -> list[dict]:
    """Two app sessions (AppTest on the couplings page, one process each) started together, against solo runs."""
    steps, seeds = 20, (0, 1)
    together = [_app_session(s, steps) for s in seeds]
    side = [_session_rows(p) for p in together]
    alone = [_session_rows(_app_session(s, steps)) for s in seeds]
    close, same, notes, failures = [], [], [], []
    for seed, (rows, err), (solo, solo_err) in zip(seeds, side, alone):
        if rows is None or solo is None:
            failures.append(f"seed {seed}: {err or solo_err}")
            continue
        w2 = {r["coupling"]: r["W2"] for r in rows}
        w2_solo = {r["coupling"]: r["W2"] for r in solo}
        close.append(w2.keys() == w2_solo.keys() and all(abs(w2[k] - w2_solo[k]) <= 0.1 * w2_solo[k] for k in w2))
        same.append(w2 == w2_solo)
        notes.append(f"seed {seed}: W2 " + ", ".join(f"{k} {w2[k]:.4f} vs {w2_solo.get(k, float('nan')):.4f} alone" for k in w2))
    label = "two app sessions at once (AppTest, couplings page, one process per session)"
    if failures:
        return [result(label, False, "; ".join(failures))]
    return [result(f"{label}: results within 10% of solo sessions", all(close), "; ".join(notes)),
            result(f"{label}: results identical to solo sessions", all(same), "identical" if all(same) else "; ".join(notes))]
