"""The benchmark suite: its building blocks (fast) and one --quick run end to end (slow)."""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from benchmarks import run as bench_run
from benchmarks.exp_speed import ReferenceLoop
from benchmarks.measures import finite_or_none, nn_distance_ratio, summarize, verdict
from benchmarks.settings import EXPERIMENTS, quick
from benchmarks.targets import Shift, Target, rotate
from gft.core.couplings import Coupling, pairing_cost
from gft.data import sample_distribution

ROOT = Path(__file__).resolve().parents[1]
STATUSES = {"ok", "partial", "skipped", "failed", "not run"}


# ---- building blocks -------------------------------------------------------------------------
def test_rotated_target_is_the_registered_law_turned_about_the_origin():
    base = sample_distribution("moons", 500, 3)
    turned = Target("moons_rot90").sample(500, 3)
    assert torch.allclose(turned[:, 0], -base[:, 1], atol=1e-6)  # (x, y) -> (-y, x)
    assert torch.allclose(turned[:, 1], base[:, 0], atol=1e-6)
    r40 = rotate(base, 40.0)
    assert torch.allclose(r40.norm(dim=1), base.norm(dim=1), atol=1e-5)  # a rotation keeps radii
    assert not torch.allclose(r40, base, atol=0.1)
    assert torch.equal(Target("moons_rot40").sample(100, 7), Target("moons_rot40").sample(100, 7))


def test_targets_and_shifts_reject_unknown_names():
    with pytest.raises(ValueError, match="unknown benchmark target"):
        Target("nosuch_rot30")
    with pytest.raises(ValueError, match="source must be a registered"):
        Shift("moons_rot40->gaussian")
    with pytest.raises(ValueError, match="SOURCE->TARGET"):
        Shift("gaussian")
    pool = Target("8gaussians").pool(1000, seed=0, limit=10)
    assert pool.shape == (10, 2)
    assert not torch.equal(Target("8gaussians").held_out(10, 0), pool)


def test_nn_distance_ratio_separates_copies_from_fresh_draws():
    train = sample_distribution("8gaussians", 300, 0)
    fresh = sample_distribution("8gaussians", 300, 1)
    held = sample_distribution("8gaussians", 300, 2)
    assert nn_distance_ratio(train.clone(), train, held) == 0.0  # pure memorisation
    assert 0.7 < nn_distance_ratio(fresh, train, held) < 1.4  # a model that generalises
    assert nn_distance_ratio(fresh + 5.0, train, held) > 3.0  # samples off the data


def test_verdict_needs_a_consistent_difference_over_seeds():
    b = [1.0, 2.0, 3.0, 4.0, 5.0]
    assert verdict([x - 0.5 for x in b], b) == "better"
    assert verdict([x + 0.5 for x in b], b) == "worse"
    assert verdict([x + 0.5 for x in b], b, lower_is_better=False) == "better"
    assert verdict([1.3, 1.7, 3.2, 3.9, 5.1], b) == "no clear difference"  # differences straddle 0
    assert verdict([0.0, 1.0], [5.0, 6.0]).startswith("too few seeds")
    assert verdict([None, float("nan"), 1.0], [1.0, 1.0, 2.0]).startswith("too few seeds")


def test_summaries_skip_missing_values_and_json_stays_finite():
    s = summarize([1.0, 2.0, None, float("nan")])
    assert (s.mean, s.n, s.missing) == (1.5, 2, 2)
    assert math.isclose(s.sd, math.sqrt(0.5))
    assert summarize([None]).mean is None
    clean = finite_or_none({"a": [1.0, float("inf")], "b": np.float32(2.5), "c": {"d": float("nan")}})
    assert clean == {"a": [1.0, None], "b": 2.5, "c": {"d": None}}
    json.dumps(clean, allow_nan=False)


def test_reference_loop_pairs_by_an_optimal_permutation_and_trains():
    pool = sample_distribution("8gaussians", 2000, 0)
    loop = ReferenceLoop(pool, "ot", 128, seed=4, device=torch.device("cpu"))
    x0, x1 = loop.draw()
    _, x1_gft = Coupling("ot").pair(x0, x1)
    # x1 is already optimally paired, so gft's exact OT cannot improve on it (and must match it).
    assert math.isclose(pairing_cost(x0, x1), pairing_cost(x0, x1_gft), rel_tol=1e-5)
    shuffled = x1[torch.randperm(128, generator=torch.Generator().manual_seed(0))]
    assert pairing_cost(x0, x1) < pairing_cost(x0, shuffled)
    before = [p.detach().clone() for p in loop.model.parameters()]
    loop.step()
    assert any(not torch.equal(a, b) for a, b in zip(before, loop.model.parameters()))


def test_settings_validate_with_the_field_name():
    with pytest.raises(ValueError, match="stability_evals"):
        replace(quick(), stability_evals=2)
    with pytest.raises(ValueError, match="multiple of stability_evals"):
        replace(quick(), stability_steps=121)
    with pytest.raises(ValueError, match="workers"):
        quick(workers=0)


def test_cli_rejects_unknown_experiments_in_one_line(capsys):
    with pytest.raises(SystemExit) as exc:
        bench_run.main(["--only", "stability,bogus"])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "bogus" in err[0] and err[0].startswith("benchmarks: error:")


# ---- the whole quick suite -------------------------------------------------------------------
def _no_nan(text: str) -> dict:
    def refuse(name):
        raise AssertionError(f"results.json holds {name}")

    return json.loads(text, parse_constant=refuse)


def _finite(summary: dict) -> bool:
    return summary["mean"] is not None and math.isfinite(summary["mean"])


@pytest.mark.slow
def test_quick_suite_writes_results_report_and_figures(tmp_path):
    out = tmp_path / "bench"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    run = subprocess.run([sys.executable, "-m", "benchmarks", "--quick", "--out", str(out)], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=1800, stdin=subprocess.DEVNULL)
    assert run.returncode == 0, run.stderr[-3000:]
    check_quick_outputs(out, out / "REPORT.md")


def check_quick_outputs(out: Path, report_path: Path) -> None:
    """Everything a --quick run must leave in ``out`` (results, CSVs, figures) and at ``report_path``."""
    results = _no_nan((out / "results.json").read_text())
    settings = quick()

    assert results["schema"] == "gft-benchmarks/1" and results["mode"] == "quick"
    env_info = results["environment"]
    assert env_info["gpu_available"] == torch.cuda.is_available() and env_info["device"]
    ex = results["experiments"]
    assert set(EXPERIMENTS) <= set(ex) and all(ex[n]["status"] in STATUSES for n in EXPERIMENTS)

    st = ex["stability"]
    assert st["status"] == "ok", st.get("errors")
    assert len(st["summary"]) == len(settings.stability_shifts) * 5  # 3 GFT schedules, standard, scratch
    for row in st["summary"]:
        assert row["seeds"] == settings.seeds
        assert _finite(row["final_w2"]) and row["final_w2"]["mean"] > 0 and _finite(row["w2_floor"])
        assert -1.0 <= row["spearman"]["mean"] <= 1.0
    for curve in st["curves"]:
        assert curve["steps"] == [i * settings.stability_steps // settings.stability_evals
                                  for i in range(settings.stability_evals + 1)]
        assert all(math.isfinite(v) for v in curve["mean"])

    cp = ex["couplings"]
    assert cp["status"] == "ok", cp.get("errors")
    assert {r["coupling"] for r in cp["summary"]} == {"independent", "ot", "sinkhorn"}
    for row in cp["summary"]:
        assert all(_finite(row[f"w2_euler{k}"]) for k in (1, 2, 4, 8)) and row["nfe"]["mean"] >= 6
        assert _finite(row["straightness"]) and row["straightness"]["mean"] >= 0

    ld = ex["limited_data"]
    assert ld["status"] == "ok", ld.get("errors")
    for row in ld["summary"]:
        assert 0.0 <= row["mode_coverage"]["mean"] <= 1.0 and row["nn_distance_ratio"]["mean"] > 0

    dg = ex["digits"]  # scikit-learn's digits are a hard dependency: never skipped
    assert dg["status"] == "ok", dg.get("errors") or dg.get("reason")
    assert all(_finite(r["fd"]) for r in dg["summary"])

    sp = ex["speed"]
    assert sp["status"] == "ok", sp.get("reason")
    assert all(v > 0 and math.isfinite(v) for v in sp["training"]["steps_per_second"].values())
    assert all(math.isfinite(v) for v in sp["training"]["ratios"].values())
    exact = [r for r in sp["ot_per_batch"] if r["coupling"].startswith("exact")]
    assert [r["batch"] for r in exact] == list(settings.ot_sizes) and all(r["seconds"] > 0 for r in exact)
    assert all(r["seconds"] > 0 for r in sp["sampling"])

    rb = ex["robustness"]
    # "partial" means at least one robustness check failed (benchmarks/run.py): never acceptable. Quick
    # mode leaves the AppTest sessions check out (it is not run, so not listed), it does not fail it.
    failed = [c for c in rb.get("checks", []) if not c["passed"]]
    assert rb["status"] == "ok" and not failed, failed or rb.get("reason")
    assert rb["passed"] == rb["total"] >= 8
    for check in rb["checks"]:
        assert check["passed"] is True and check["message"]
    by_name = {c["check"]: c for c in rb["checks"]}
    assert len([name for name in by_name if name.startswith("cli bad data")]) == 5
    assert len([name for name in by_name if name.startswith("cli SIGKILL mid-training")]) == 3
    assert "stop event mid-way (Trainer.run)" in by_name

    for name in results["files"]["csv"]:
        lines = (out / name).read_text().splitlines()
        assert len(lines) >= 2 and "," in lines[0]
    report = report_path.read_text()
    assert report.startswith("# GFT benchmark report")
    assert "## Where GFT did not beat standard fine-tuning" in report and "Quick mode" in report
    if not torch.cuda.is_available():
        assert "No GPU was available for this run" in report
    links = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", report)
    assert len(links) == len(results["files"]["figures"])
    for link in links:
        figure = report_path.parent / link
        assert figure.is_file() and figure.read_bytes()[:4] == b"\x89PNG"
    assert (report_path.parent / "RESULTS_SNIPPET.md").read_text().startswith("## Results")
