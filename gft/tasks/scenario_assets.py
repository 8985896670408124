"""Shipped scenario results (``assets/scenarios/<key>.npz``): write them once, read them instantly.

One compressed ``.npz`` per scenario, read with ``allow_pickle=False``:

- ``meta``: a JSON string: schema, the scenario's definition (question, base, every run's config),
  seeds, package versions, each run's history, best checkpoint, divergence and seconds, and the W2
  null band of the target;
- ``steps`` (F,) int32: the snapshot steps every run shares (one shared slider);
- ``tau_<i>``, ``lam_<i>`` (F,) float32 and ``traj_<i>`` (F, K + 1, n, 2) float16: run ``i``'s
  temperature and the Euler trajectories of the same ``n`` noise draws at each snapshot;
- ``pre_cloud``, ``target_cloud`` (m, 2) float16, and ``train_points`` (L, 2) float16 when the runs
  see only ``L`` target samples (limited data).

float16 keeps a scenario to a few hundred KB; its 3-4 significant digits are far below a pixel.
"""

from __future__ import annotations

import io
import json
import os
import platform
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from gft.core.training import Snapshot
from gft.tasks.scenarios import RunRecord, Scenario

SCHEMA = 1
SCENARIO_DIR = Path(__file__).resolve().parents[2] / "assets" / "scenarios"
VERSION_KEYS = ("python", "torch", "numpy", "pot", "gft_commit")


def asset_path(key: str, directory: Path | None = None) -> Path:
    return (SCENARIO_DIR if directory is None else Path(directory)) / f"{key}.npz"


def package_versions(commit: str | None = None) -> dict[str, str]:
    """The versions a shipped result was made with (recorded in its meta)."""
    import ot
    import torch

    return {"python": platform.python_version(), "torch": torch.__version__, "numpy": np.__version__, "pot": ot.__version__,
            "gft_commit": commit or "unknown"}


def definition(scenario: Scenario) -> dict:
    """What a scenario declares: the meta's part that must match the code that ships it."""
    return {
        "key": scenario.key, "title": scenario.title, "question": scenario.question, "base": scenario.base,
        "particles": scenario.particles, "trajectory_steps": scenario.trajectory_steps, "frames": scenario.frames,
        "eval_points": scenario.eval_points,
        "runs": [{"name": r.name, "target": r.target, "config": scenario.config_of(r).to_dict(), "limit": r.limit,
                  "val_fraction": r.val_fraction} for r in scenario.runs],
    }  # fmt: skip


def common_steps(records: list[RunRecord]) -> list[int]:
    """Snapshot steps every run recorded (a diverged run ends early: the others are cut there too)."""
    steps = set.intersection(*[{s.step for s in r.snapshots} for r in records])
    if not steps:
        raise ValueError("the runs share no snapshot step; nothing to animate")
    return sorted(steps)


def save_scenario(
    scenario: Scenario,
    records: list[RunRecord],
    pre_cloud: np.ndarray,
    target_cloud: np.ndarray,
    train_points: np.ndarray | None = None,
    null_w2: dict | None = None,
    versions: dict | None = None,
    directory: Path | None = None,
) -> Path:
    """Write one scenario's results atomically (temporary file in the same folder, fsync, rename)."""
    if [r.name for r in records] != [r.name for r in scenario.runs]:
        raise ValueError("records must hold one run per scenario run, in order")
    steps = common_steps(records)
    arrays: dict[str, np.ndarray] = {"steps": np.asarray(steps, dtype=np.int32)}
    runs_meta = []
    for i, (run, rec) in enumerate(zip(scenario.runs, records)):
        by_step = {s.step: s for s in rec.snapshots}
        arrays[f"tau_{i}"] = np.asarray([by_step[s].tau for s in steps], dtype=np.float32)
        arrays[f"lam_{i}"] = np.asarray([by_step[s].lam for s in steps], dtype=np.float32)
        arrays[f"traj_{i}"] = np.stack([np.asarray(by_step[s].trajectory, dtype=np.float16) for s in steps])
        runs_meta.append({"name": rec.name, "history": rec.history, "best": rec.best, "diverged_at": rec.diverged_at,
                          "seconds": round(rec.seconds, 2), "few_step_w2": rec.few_step_w2})
    arrays["pre_cloud"] = np.asarray(pre_cloud, dtype=np.float16)
    arrays["target_cloud"] = np.asarray(target_cloud, dtype=np.float16)
    if train_points is not None:
        arrays["train_points"] = np.asarray(train_points, dtype=np.float16)
    meta = {
        "schema": SCHEMA, "made_by": "scripts/make_scenarios.py", "definition": definition(scenario),
        "seeds": {"runs": sorted({r.config.seed for r in scenario.runs}), "clouds": 0},
        "versions": versions or package_versions(), "results": runs_meta, "null_w2": null_w2,
    }  # fmt: skip
    arrays["meta"] = np.asarray(json.dumps(meta, allow_nan=False))
    path = asset_path(scenario.key, directory)
    path.parent.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o644)  # a shipped file everyone may read (mkstemp creates it 0600)
        with os.fdopen(fd, "wb") as f:
            f.write(buf.getvalue())
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


@dataclass(frozen=True)
class ShippedRun:
    name: str
    snapshots: tuple[Snapshot, ...]  # steps shared by every run, each carrying its trajectory
    history: tuple[dict, ...]
    best: dict | None
    diverged_at: int | None
    few_step_w2: float | None

    def final_w2(self) -> float | None:
        w2 = [r["w2"] for r in self.history if r.get("w2") is not None]
        return w2[-1] if w2 else None


@dataclass(frozen=True)
class ShippedScenario:
    meta: dict
    runs: tuple[ShippedRun, ...]
    pre_cloud: np.ndarray
    target_cloud: np.ndarray
    train_points: np.ndarray | None

    @property
    def null_w2(self) -> dict | None:
        return self.meta.get("null_w2")


def load_scenario(key: str, directory: Path | None = None) -> ShippedScenario:
    """Read a shipped scenario; a missing, foreign or malformed file is a ValueError naming it and the field."""
    path = asset_path(key, directory)
    if not path.is_file():
        raise ValueError(f"{path.name}: no shipped result (run python scripts/make_scenarios.py)")
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
        meta = json.loads(str(arrays["meta"]))
    except (OSError, ValueError, KeyError) as exc:
        raise ValueError(f"{path.name}: not a scenario file ({type(exc).__name__})") from None
    if meta.get("schema") != SCHEMA:
        raise ValueError(f"{path.name}: schema must be {SCHEMA}, got {meta.get('schema')!r}")
    runs_def, results = meta["definition"]["runs"], meta["results"]
    steps = arrays["steps"]
    total = runs_def[0]["config"]["steps"]
    runs = []
    for i, (rd, res) in enumerate(zip(runs_def, results)):
        traj, tau, lam = arrays.get(f"traj_{i}"), arrays.get(f"tau_{i}"), arrays.get(f"lam_{i}")
        if traj is None or tau is None or lam is None:
            raise ValueError(f"{path.name}: run {i} lacks traj_{i}, tau_{i} or lam_{i}")
        if traj.ndim != 4 or traj.shape[0] != len(steps) or traj.shape[-1] != 2 or tau.shape != steps.shape or lam.shape != steps.shape:
            raise ValueError(f"{path.name}: traj_{i} must be (F={len(steps)}, K+1, n, 2) with F taus and lambdas, got {traj.shape}")
        snaps = tuple(
            Snapshot(int(s), total, float(t), float(lm), None, {"trajectory": traj[k].astype(np.float32)})
            for k, (s, t, lm) in enumerate(zip(steps, tau, lam))
        )
        runs.append(ShippedRun(rd["name"], snaps, tuple(res["history"]), res.get("best"), res.get("diverged_at"), res.get("few_step_w2")))
    f32 = lambda a: None if a is None else a.astype(np.float32)  # noqa: E731
    return ShippedScenario(meta, tuple(runs), f32(arrays["pre_cloud"]), f32(arrays["target_cloud"]), f32(arrays.get("train_points")))
