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
from benchmarks.common import VARIANTS, nn_distance_ratio
from benchmarks.exp_speed import ReferenceLoop
from benchmarks.exp_stress import largest_rise, late_readings, settled, upward_movement
from benchmarks.parallel import Job, Runner
from benchmarks.protocol import PRIMARY, evaluate
from benchmarks.settings import EXPERIMENTS, full, quick
from benchmarks.stats import aligned, finite_or_none, holm, paired, proportion, summarize
from benchmarks.store import Store
from benchmarks.targets import Shift, Target, rotate
from gft.core.couplings import Coupling, pairing_cost
from gft.data import sample_distribution
from gft.evaluation.metrics import energy_distance_unbiased
from gft.evaluation.reference import EnergyReference

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


def test_scaled_target_shrinks_radii_and_keeps_angles():
    base = sample_distribution("8gaussians", 400, 2)
    both = Target("8gaussians_rot20_scale0.8").sample(400, 2)
    assert torch.allclose(both.norm(dim=1), 0.8 * base.norm(dim=1), atol=1e-5)
    assert torch.allclose(both, 0.8 * rotate(base, 20.0), atol=1e-6)
    assert torch.allclose(Target("8gaussians_scale2").sample(400, 2), 2 * base, atol=1e-6)


def test_targets_and_shifts_reject_unknown_names():
    for bad in ("nosuch_rot30", "moons_scale0", "moons_rot", "moons_scale-1"):
        with pytest.raises(ValueError, match="unknown benchmark target"):
            Target(bad)
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


def test_paired_t_matches_scipy_and_its_interval_covers_the_mean_difference():
    from scipy import stats as st

    rng = np.random.default_rng(0)
    b = rng.normal(1.0, 0.3, 10)
    a = b - 0.2 + rng.normal(0, 0.1, 10)
    r = paired(a, b)
    ref = st.ttest_rel(a, b)
    assert r.n == 10 and math.isclose(r.t, ref.statistic, rel_tol=1e-9) and math.isclose(r.p, ref.pvalue, rel_tol=1e-9)
    d = a - b
    half = st.t.ppf(0.975, 9) * d.std(ddof=1) / math.sqrt(10)  # t quantile, not 2 standard errors
    assert math.isclose(r.ci_low, d.mean() - half) and math.isclose(r.ci_high, d.mean() + half)
    assert math.isclose(r.dz, d.mean() / d.std(ddof=1)) and math.isclose(r.relative, d.mean() / b.mean())
    # missing or non-finite pairs are dropped, and fewer than 3 pairs give no test
    r2 = paired([1.0, None, float("nan"), 2.0], [1.5, 2.0, 3.0, 2.5])
    assert r2.n == 2 and r2.p is None and r2.diff is None
    with pytest.raises(ValueError, match="equal lengths"):
        paired([1.0], [1.0, 2.0])


def test_paired_t_false_positive_rate_is_near_alpha_under_the_null():
    rng = np.random.default_rng(1)
    hits = sum(paired(rng.normal(size=5), rng.normal(size=5)).p < 0.05 for _ in range(4000))
    assert 0.035 < hits / 4000 < 0.065  # the old "2 standard errors" rule sat near 0.116 at 5 seeds


def test_holm_step_down_matches_a_worked_example():
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert holm([0.2, None, 0.01]) == [0.2, None, 0.02]
    assert holm([]) == []
    adjusted = holm([0.5, 0.6, 0.7])
    assert adjusted == sorted(adjusted) and max(adjusted) <= 1.0


def test_wilson_interval_is_not_empty_at_zero_events():
    rate, low, high = proportion(0, 10)
    assert rate == 0.0 and low == 0.0 and 0.25 < high < 0.35
    rate, low, high = proportion(5, 10)
    assert low < 0.5 < high and math.isclose(low + high, 1.0)
    assert proportion(0, 0) == (None, None, None)


def test_summaries_skip_missing_values_and_json_stays_finite():
    s = summarize([1.0, 2.0, None, float("nan")])
    assert (s.mean, s.n, s.missing) == (1.5, 2, 2)
    assert math.isclose(s.sd, math.sqrt(0.5)) and s.ci_low < 1.5 < s.ci_high
    assert summarize([None]).mean is None
    assert aligned({0: 1.0, 2: 3.0}, {0: 2.0, 1: 5.0}) == ([1.0, None, 3.0], [2.0, 5.0, None])
    clean = finite_or_none({"a": [1.0, float("inf")], "b": np.float32(2.5), "c": {"d": float("nan")}})
    assert clean == {"a": [1.0, None], "b": 2.5, "c": {"d": None}}
    json.dumps(clean, allow_nan=False)


def test_energy_reference_equals_the_unbiased_energy_distance():
    ref_pts = sample_distribution("moons", 600, 0)
    x = sample_distribution("moons", 300, 1) + 0.3
    reference = EnergyReference(ref_pts)
    assert math.isclose(reference.energy(x), energy_distance_unbiased(x, ref_pts), rel_tol=1e-9)
    band = reference.null_band(lambda k: sample_distribution("moons", 300, 10 + k), 300, pairs=8)
    assert abs(band.mean) < 3 * band.sd and band.sd > 0  # fresh draws read about 0 (unbiased)
    assert reference.energy(x) > band.high  # a shifted sample is outside the band
    assert reference.energy(torch.full((5, 2), float("nan"))) == math.inf
    with pytest.raises(ValueError, match="shape"):
        reference.energy(torch.zeros(5, 3))


def test_largest_rise_is_the_climb_above_the_running_best():
    assert largest_rise([3.0, 2.0, 2.5, 1.0, 1.8]) == pytest.approx(0.8)
    assert largest_rise([3.0, 2.0, 1.0]) == 0.0  # monotone descent never rises
    assert upward_movement([3.0, 2.0, 2.5, 1.0, 1.8]) == pytest.approx(1.3)
    assert upward_movement([3.0, 2.0, 1.0]) == 0.0  # a late descent is not jitter
    row = {"steps": 500, "every": 50, "curve": [float(k) for k in range(11)]}
    assert late_readings(row) == [8.0, 9.0, 10.0]  # steps 400, 450 and 500
    calm = {"steps": 500, "every": 50, "curve": [0.2] * 8 + [0.1, 0.15, 0.12], "diverged": False, "largest_rise": 0.05,
            "final": 0.12}
    assert settled(calm)["diverged"] is False and settled(calm)["late_up"] == pytest.approx(0.05)
    blown = dict(calm, curve=[0.2] * 10 + [5e3])  # flung off the data without tripping the loss rule
    assert settled(blown)["diverged"] and settled(blown)["blew_up"] and settled(blown)["largest_rise"] is None


def test_protocol_holm_corrects_only_the_primary_endpoints():
    rng = np.random.default_rng(3)
    base = rng.normal(1.0, 0.2, 10)
    comparisons = [
        {"id": "p1", "question": "q1", "a": "gft", "b": "standard", "metric": "energy", "lower_is_better": True,
         "values_a": list(base - 0.1 + rng.normal(0, 0.02, 10)), "values_b": list(base), "null": None, "primary_candidate": True},
        {"id": "p2", "question": "q2", "a": "gft", "b": "standard", "metric": "energy", "lower_is_better": True,
         "values_a": list(base + rng.normal(0, 0.05, 10)), "values_b": list(base), "null": None, "primary_candidate": True},
        {"id": "s1", "question": "q3", "a": "gft", "b": "standard", "metric": "rise", "lower_is_better": True,
         "values_a": list(base + 0.1 + rng.normal(0, 0.02, 10)), "values_b": list(base), "null": None, "primary_candidate": False},
    ]
    out = {c["id"]: c for c in evaluate({"experiments": {"x": {"comparisons": comparisons}}})}
    p1, p2 = out["p1"]["stats"]["p"], out["p2"]["stats"]["p"]
    assert out["p1"]["stats"]["p_holm"] == pytest.approx(min(1.0, 2 * min(p1, p2)) if p1 < p2 else max(2 * p2, p1))
    assert out["p1"]["verdict"] == "gft better" and out["p2"]["verdict"] == "no difference detected"
    assert out["s1"]["stats"]["p_holm"] is None and out["s1"]["verdict"] == "gft worse"
    assert len(PRIMARY) == 6 and {e for e, _, _ in PRIMARY} <= set(EXPERIMENTS)


def _square(x: int) -> int:
    return x * x


def test_store_reads_back_finished_tasks_and_ignores_torn_files(tmp_path):
    store = Store(tmp_path / "runs", log=lambda m: None)
    jobs = [Job(_square, (k,), f"square {k}", f"sq/{k}") for k in range(3)]
    with Runner(1, 1, lambda m: None, store) as runner:
        assert runner.map(jobs) == [0, 1, 4]
    store.put("sq/1", 99)  # a stored result is read back, not recomputed
    torn = store._path("sq/2")
    torn.write_bytes(b"not a pickle")
    with Runner(1, 1, lambda m: None, store) as runner:
        assert runner.map(jobs) == [0, 99, 4]  # the torn file is recomputed
    assert store.get("sq/2") == 4 and store.get("never") is None


def test_variants_make_the_configs_they_name():
    assert VARIANTS["gft-stop"].config(1000).make_schedule().tau(999) == pytest.approx(0.5)
    assert VARIANTS["gft"].config(1000).make_schedule().tau(999) == 0.0
    assert VARIANTS["gft-constant"].config(1000).make_schedule().lam(0) == pytest.approx(0.5)
    slow = VARIANTS["standard-slow"].config(1000)
    assert (slow.lr, slow.warmup, slow.method) == (3e-4, 100, "standard")
    assert VARIANTS["l2sp"].config(10).anchor_weight > 0 and VARIANTS["standard-ema"].config(10).ema > 0


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
    with pytest.raises(ValueError, match="budgets"):
        replace(quick(), budgets=(100, 50))
    with pytest.raises(ValueError, match="stress_steps"):
        replace(quick(), stress_steps=101)
    with pytest.raises(ValueError, match="pretrained_seeds"):
        replace(quick(), pretrained_seeds=5)
    with pytest.raises(ValueError, match="workers"):
        quick(workers=0)
    f = full()
    assert f.seeds >= 10 and f.pretrained_seeds >= 3 and f.budgets == (500, 1000, 2000, 4000)
    assert set(f.fewshot_sizes) == {8, 16, 64, 256} and len(f.chain) >= 4 and f.eval_n >= 5000 and f.reference_n >= 20000
    assert f.null_pairs >= 20 and f.digits_eval_n >= 1000


def test_cli_rejects_unknown_experiments_in_one_line(capsys):
    with pytest.raises(SystemExit) as exc:
        bench_run.main(["--only", "budget,bogus"])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "bogus" in err[0] and err[0].startswith("benchmarks: error:")


def test_report_only_runs_nothing_and_refuses_fresh(tmp_path, capsys):
    assert bench_run.main(["--report-only", "--fresh"]) == 2
    assert "--report-only reads the runs/ cache" in capsys.readouterr().err
    out = tmp_path / "empty"
    assert bench_run.main(["--report-only", "--quick", "--out", str(out)]) == 0  # an empty cache: nothing to train
    results = json.loads((out / "results.json").read_text())
    assert all(e["status"] == "not run" for k, e in results["experiments"].items() if not k.startswith("_"))
    assert not (out / "runs").exists() and (out / "REPORT.md").read_text().startswith("# GFT benchmark report")


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

    assert results["schema"] == "gft-benchmarks/2" and results["mode"] == "quick"
    env_info = results["environment"]
    assert env_info["gpu_available"] == torch.cuda.is_available() and env_info["device"]
    ex = results["experiments"]
    assert set(EXPERIMENTS) <= set(ex) and all(ex[n]["status"] in STATUSES for n in EXPERIMENTS)
    for name in ("budget", "stress", "fewshot", "straight", "chain", "digits"):
        assert ex[name]["status"] == "ok", (name, ex[name].get("errors") or ex[name].get("reason"))
        assert ex[name]["done"] == ex[name]["runs"] > 0

    budget = ex["budget"]["table"]
    assert len(budget) == len(settings.budget_shifts) * len(settings.budgets) * 2
    for row in budget:
        assert row["standard"]["n"] == row["gft"]["n"] == settings.seeds
        assert row["null"]["pairs"] == settings.null_pairs and row["null"]["sd"] > 0
        # training seconds grow with the step read (evaluation time excluded)
    b0 = [r for r in budget if r["point"] == "budget"]
    assert all(a["standard_seconds"]["mean"] < b["standard_seconds"]["mean"] for a, b in zip(b0, b0[1:]))

    stress = ex["stress"]
    assert len(stress["table"]) == len(settings.stress_lrs) * len(settings.stress_batches) * 2
    for row in ex["stress"]["rows"]:
        assert len(row["curve"]) == settings.stress_steps // settings.stress_every + 1 or row["diverged"]
        assert row["diverged"] or row["largest_rise"] >= 0

    few = ex["fewshot"]["rows"]
    trained = [r for r in few if r["variant"] != "pretrained"]
    n_val = max(2, round(settings.val_fraction * settings.fewshot_sizes[0]))
    assert all(r["val_points"] == n_val and r["train_points"] == settings.fewshot_sizes[0] - n_val for r in trained)
    assert all(0 <= r["best_step"] <= settings.fewshot_steps and 0 <= r["best_lambda"] < 1 for r in trained if "best" in r)
    gft_stop = [r for r in trained if r["variant"] == "gft-stop"]
    assert gft_stop and all(r["best_lambda"] > 0 for r in gft_stop)  # it never reaches tau = 0

    straight = {r["variant"]: r for r in ex["straight"]["table"]}
    assert set(straight) == {"pretrained (OT)", "standard", "gft"}
    assert all(r["straightness"]["mean"] >= 0 for r in straight.values())

    chain = ex["chain"]["table"]
    assert len(chain) == sum(k + 1 for k in range(1, len(settings.chain)))  # every law seen so far, after each stage

    digits = ex["digits"]
    assert all(_finite(r["fd"]) for r in digits["table"]) and digits["null"]["sd"] > 0

    endpoints = results["endpoints"]
    primary = [c for c in endpoints if c["primary"]]
    assert {c["experiment"] for c in primary} == {e for e, _, _ in PRIMARY}
    assert all(c["stats"]["p_holm"] is None or c["stats"]["p_holm"] >= c["stats"]["p"] for c in primary)

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
    assert report.index("## Declared endpoints") < report.index("## Where GFT helps, where it does not, by how much")
    assert report.index("## Where GFT helps") < report.index("## 1. Equal budget") and "Quick mode" in report
    if not torch.cuda.is_available():
        assert "No GPU was available" in report
    links = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", report)
    assert len(links) == len(results["files"]["figures"])
    for link in links:
        figure = report_path.parent / link
        assert figure.is_file() and figure.read_bytes()[:4] == b"\x89PNG"
    assert (report_path.parent / "RESULTS_SNIPPET.md").read_text().startswith("## Results")
