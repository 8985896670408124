"""The gallery's curated scenarios: the shipped results in assets/scenarios match what the code declares
(schema, definitions, seeds, versions, shapes, size), the build script runs in a tiny mode, and a bad file
is refused with one line."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

from gft.core.training import TrainConfig
from gft.tasks.scenario_assets import SCENARIO_DIR, SCHEMA, VERSION_KEYS, definition, load_scenario
from gft.tasks.scenarios import SCENARIOS, Scenario, ScenarioRun, scenario

ROOT = Path(__file__).resolve().parents[1]
MAX_TOTAL_BYTES = 3_000_000  # the gallery ships a few MB at most


@pytest.mark.parametrize("sc", SCENARIOS, ids=lambda s: s.key)
def test_shipped_result_matches_its_declaration(sc: Scenario):
    ship = load_scenario(sc.key)
    meta = ship.meta
    assert meta["schema"] == SCHEMA and meta["made_by"] == "scripts/make_scenarios.py"
    # The file was made from exactly this definition: change a scenario and the test asks for a rebuild.
    assert meta["definition"] == json.loads(json.dumps(definition(sc))), "rebuild: python scripts/make_scenarios.py " + sc.key
    assert meta["seeds"]["runs"] == sorted({r.config.seed for r in sc.runs})
    assert set(meta["versions"]) == set(VERSION_KEYS) and all(meta["versions"][k] for k in VERSION_KEYS)
    assert [r.name for r in ship.runs] == [r.name for r in sc.runs]
    for run, declared in zip(ship.runs, sc.runs):
        steps = [s.step for s in run.snapshots]
        if run.diverged_at is None:
            assert steps[0] == 0 and steps[-1] == sc.steps and len(steps) == sc.frames + 1
        for snap in run.snapshots:
            assert snap.trajectory.shape == (sc.trajectory_steps + 1, sc.particles, 2)
            assert snap.trajectory.dtype == np.float32 and np.isfinite(snap.trajectory).all()
            assert 0.0 <= snap.lam <= 1.0 and snap.lam == pytest.approx(snap.tau / (1 + snap.tau), abs=1e-6)
            if declared.config.method != "gft":
                assert snap.tau == 0.0
        w2 = [r["w2"] for r in run.history if r.get("w2") is not None]
        assert len(w2) >= 2 and all(0 < v < 10 for v in w2)
        assert run.few_step_w2 is None or 0 < run.few_step_w2 < 10
        if declared.val_fraction:
            assert run.best is not None and run.best["step"] in [r["step"] for r in run.history]
    assert ship.pre_cloud.shape == (1000, 2) and ship.target_cloud.shape == (1000, 2)
    limits = {r.limit for r in sc.runs} - {None}
    assert (ship.train_points is None) == (not limits)
    if limits:
        assert ship.train_points.shape == (max(limits), 2)
    null = ship.null_w2
    assert null["n"] == sc.eval_points and null["sd"] > 0 and null["pairs"] >= 5


def test_shipped_results_are_small_and_one_per_scenario():
    files = sorted(SCENARIO_DIR.glob("*.npz"))
    assert [f.stem for f in files] == sorted(s.key for s in SCENARIOS)
    assert sum(f.stat().st_size for f in files) < MAX_TOTAL_BYTES


def test_script_builds_every_field_in_a_tiny_mode(tmp_path):
    spec = importlib.util.spec_from_file_location("make_scenarios", ROOT / "scripts" / "make_scenarios.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    main = module.main
    keys = ["anneal_or_jump", "sixteen_points"]
    assert main([*keys, "--tiny", "--out", str(tmp_path)]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"{k}.npz" for k in keys]  # no temporary file left
    for key in keys:
        tiny = scenario(key).tiny()
        ship = load_scenario(key, tmp_path)
        assert ship.meta["definition"] == json.loads(json.dumps(definition(tiny)))
        assert ship.runs[0].snapshots[-1].trajectory.shape == (tiny.trajectory_steps + 1, tiny.particles, 2)
        assert [s.step for s in ship.runs[0].snapshots] == [0, 4, 8]
    assert load_scenario("sixteen_points", tmp_path).runs[1].best is not None  # the validation split's pick


def test_bad_scenario_files_and_definitions_are_refused_in_one_line(tmp_path):
    with pytest.raises(ValueError, match="no shipped result"):
        load_scenario("nope", tmp_path)
    (tmp_path / "broken.npz").write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="broken.npz: not a scenario file"):
        load_scenario("broken", tmp_path)
    np.savez(tmp_path / "old.npz", meta=np.asarray(json.dumps({"schema": 0})))
    with pytest.raises(ValueError, match="schema must be"):
        load_scenario("old", tmp_path)
    with pytest.raises(ValueError, match="no scenario named"):
        scenario("nope")
    run = ScenarioRun("gft", "8gaussians", TrainConfig(steps=10))
    with pytest.raises(ValueError, match="same number of steps"):
        Scenario("two", "t", "q?", "look", "moons", (run, ScenarioRun("standard", "8gaussians", TrainConfig(method="standard", steps=20))))
    with pytest.raises(ValueError, match="frames must be in"):
        Scenario("one", "t", "q?", "look", "moons", (run,), frames=1)
    with pytest.raises(ValueError, match="limit must be"):
        ScenarioRun("gft", "8gaussians", TrainConfig(steps=10), limit=1)
