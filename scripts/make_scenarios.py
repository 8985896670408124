"""Build the gallery's shipped scenario results in ``assets/scenarios/`` (seeded, CPU, about 2 minutes).

    python scripts/make_scenarios.py                  # every scenario of gft.tasks.scenarios.SCENARIOS
    python scripts/make_scenarios.py couplings        # only some
    python scripts/make_scenarios.py --tiny --out DIR # a few steps each: checks the script, not for shipping

Each file records the scenario's definition, the seeds and the package versions it was made with
(:mod:`gft.tasks.scenario_assets`); ``tests/test_scenarios.py`` checks that the shipped files match the code.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from gft.data import DataSpec  # noqa: E402
from gft.evaluation.points import null_bands  # noqa: E402
from gft.evaluation.probes import model_samples  # noqa: E402
from gft.tasks.runs import task_for  # noqa: E402
from gft.tasks.scenario_assets import package_versions, save_scenario  # noqa: E402
from gft.tasks.scenarios import SCENARIOS, Scenario, run_scenario  # noqa: E402
from gft.tasks.shipped import load_shipped  # noqa: E402

CLOUD_POINTS = 1000  # the static clouds behind the animation
CLOUD_SEED = 0


def git_commit() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, timeout=10)
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def make(scenario: Scenario, out: Path | None, versions: dict) -> Path:
    base = load_shipped(scenario.base).model
    records = run_scenario(scenario, base, progress=lambda line: print("  " + line, flush=True))
    target = scenario.runs[0].target
    limited = next((r for r in scenario.runs if r.limit is not None), None)
    train_points = task_for(limited.target).pool(limited.config.seed, limited.limit).numpy() if limited else None
    null = null_bands(DataSpec(target), scenario.eval_points, seed=scenario.runs[0].config.seed, pairs=5 if out else 20)["w2"]
    return save_scenario(
        scenario, records, model_samples(base, CLOUD_POINTS, CLOUD_SEED), DataSpec(target).points(CLOUD_POINTS, CLOUD_SEED).numpy(),
        train_points=train_points, null_w2=null.to_dict(), versions=versions, directory=out,
    )


def main(argv: list[str] | None = None) -> int:
    keys = [s.key for s in SCENARIOS]
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("keys", nargs="*", default=keys, help=f"subset of {keys}")
    parser.add_argument("--tiny", action="store_true", help="a few steps and particles per run (tests)")
    parser.add_argument("--out", type=Path, default=None, help="folder to write to (default assets/scenarios)")
    args = parser.parse_args(argv)
    unknown = [k for k in args.keys if k not in keys]
    if unknown:
        parser.error(f"unknown scenario(s) {unknown}; choose from {keys}")
    torch.set_num_threads(1)  # tiny MLPs: intra-op threads only fight the OT prefetch thread for the cores
    versions = package_versions(git_commit())
    for s in SCENARIOS:
        if s.key not in args.keys:
            continue
        scenario = s.tiny() if args.tiny else s
        start = time.perf_counter()
        print(f"{scenario.key}:", flush=True)
        path = make(scenario, args.out, versions)
        print(f"  -> {path} {path.stat().st_size / 1024:.0f} KB, {time.perf_counter() - start:.1f} s", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
