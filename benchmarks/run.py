"""Entry point: ``python -m benchmarks [--quick] [--out DIR] [--only NAMES]`` (or ``python benchmarks/run.py``).

Phases: pretrain the source models, run every fine-tuning task of the selected experiments in one
process pool, then measure speed and robustness alone in this process, and write results.json, CSVs,
figures, the REPORT and the README snippet.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import sys
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np
import ot
import torch

from benchmarks import exp_couplings, exp_digits, exp_limited, exp_robustness, exp_speed, exp_stability, figures, report, tables
from benchmarks.finetune2d import pretrain_2d
from benchmarks.measures import finite_or_none
from benchmarks.parallel import Job, Runner, is_error
from benchmarks.settings import EXPERIMENTS, Settings, full, quick
from gft.core.checkpoints import atomic_write_bytes
from gft.core.device import describe_device, resolve_device

SCHEMA = "gft-benchmarks/1"
HERE = Path(__file__).resolve().parent
DEFAULT_OUT = HERE / "results"
QUICK_OUT = DEFAULT_OUT / "quick"  # git-ignored: smoke-test numbers never overwrite the full results
POOL_EXPERIMENTS = {"stability": exp_stability, "couplings": exp_couplings, "limited_data": exp_limited}


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, no usage dump
        sys.stderr.write(f"benchmarks: error: {message}\n")
        raise SystemExit(2)


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if not 1 <= value <= 64:
        raise argparse.ArgumentTypeError(f"expected an integer in [1, 64], got {value}")
    return value


def _only(text: str) -> tuple[str, ...]:
    names = tuple(n.strip() for n in text.split(",") if n.strip())
    bad = [n for n in names if n not in EXPERIMENTS]
    if bad or not names:
        raise argparse.ArgumentTypeError(f"unknown experiment(s) {bad or text!r}; choose from {', '.join(EXPERIMENTS)}")
    return names


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="python -m benchmarks", description="GFT benchmark suite: results JSON/CSV, figures and REPORT.md.")
    p.add_argument("--quick", action="store_true", help="tiny sizes for CI (a few minutes on 2 cores)")
    p.add_argument("--out", default=None, help="folder for results.json, CSVs and figures/ (default: "
                                               "benchmarks/results, or benchmarks/results/quick with --quick)")
    p.add_argument("--report", default=None, help="REPORT.md path (default: benchmarks/REPORT.md for the full suite "
                                                   "in its default folder, else OUT/REPORT.md)")
    p.add_argument("--only", type=_only, default=EXPERIMENTS, help=f"comma-separated subset of {','.join(EXPERIMENTS)}")
    p.add_argument("--seeds", type=_positive, default=None, help="override the number of seeds")
    p.add_argument("--workers", type=_positive, default=None, help="processes for the fine-tuning runs "
                                                                   "(default: 2 on CPU, 1 with a GPU)")
    return p


def _environment(settings: Settings) -> dict:
    device = resolve_device("auto")
    return {
        "device": describe_device(device),
        "device_type": device.type,
        "gpu_available": torch.cuda.is_available(),
        "gpu_name": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "cpu_count": os.cpu_count(),
        "torch_threads": settings.threads,
        "workers": settings.workers,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "versions": {"torch": torch.__version__, "numpy": np.__version__, "pot": ot.__version__},
        "load_average_at_start": os.getloadavg()[0],
    }


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _pool_phase(settings: Settings, selected: tuple[str, ...], experiments: dict) -> None:
    with Runner(settings.workers, settings.threads, _log) as runner:
        _pretrain_and_finetune(runner, settings, selected, experiments)


def _pretrain_and_finetune(runner: Runner, settings: Settings, selected: tuple[str, ...], experiments: dict) -> None:
    """Pretraining, then every fine-tuning run of the selected pool experiments and digits, side by side."""
    sources = sorted(set().union(*(POOL_EXPERIMENTS[n].sources(settings) for n in selected if n in POOL_EXPERIMENTS)))
    digits_reason = None if "digits" in selected else "not selected"
    pre_jobs = [Job(pretrain_2d, (s, settings.pretrain_steps, settings.batch, settings.pool_size, 0), f"pretrain {s}")
                for s in sources]
    if digits_reason is None:
        pre_jobs.append(Job(exp_digits.pretrain_digits, (settings.digits_pretrain_steps, settings.digits_batch, 0),
                            "pretrain digits 0-4"))
    _log(f"pretraining {len(pre_jobs)} source model(s)")
    start = time.monotonic()
    pre_rows = runner.map(pre_jobs)
    pretrained, failed = {}, {}
    for job, row in zip(pre_jobs, pre_rows):
        (failed if is_error(row) else pretrained)[job.tag.removeprefix("pretrain ")] = row
    pretrain = {"seconds": time.monotonic() - start,
                "sources": {k: {"w2": v.get("w2"), "seconds": v.get("seconds")} for k, v in pretrained.items()},
                "failed": {k: v["error"] for k, v in failed.items()}}
    spans, jobs = {}, []
    # Longest runs first (digits), so the workers do not end with one straggler each.
    for name in sorted(selected, key=lambda n: n != "digits"):
        if name in POOL_EXPERIMENTS:
            missing = POOL_EXPERIMENTS[name].sources(settings) - set(pretrained)
            if missing:
                experiments[name] = {"status": "failed", "reason": f"pretraining failed for {sorted(missing)}"}
                continue
            new = POOL_EXPERIMENTS[name].jobs(settings, pretrained)
        elif name == "digits" and digits_reason is None:
            if "digits 0-4" not in pretrained:
                experiments[name] = {"status": "failed", "reason": f"pretraining failed: {failed.get('digits 0-4')}"}
                continue
            new = exp_digits.jobs(settings, pretrained["digits 0-4"])
        else:
            continue
        spans[name] = (len(jobs), len(jobs) + len(new))
        jobs.extend(new)
    _log(f"fine-tuning: {len(jobs)} run(s) on {settings.workers} worker(s)")
    start = time.monotonic()
    rows = runner.map(jobs)
    pool_seconds = time.monotonic() - start
    for name, (a, b) in spans.items():
        part = rows[a:b]
        errors = [r for r in part if is_error(r)]
        module = exp_digits if name == "digits" else POOL_EXPERIMENTS[name]
        ok = [r for r in part if not is_error(r)]
        status = "ok" if not errors else ("failed" if not ok else "partial")
        experiments[name] = {"status": status, "runs": len(part), "errors": errors, "rows": ok,
                             **(module.summarise(ok, settings) if ok else {})}
    experiments["_pool"] = {"pretraining": pretrain, "fine_tuning_seconds": pool_seconds, "runs": len(jobs)}


def _alone_phase(settings: Settings, selected: tuple[str, ...], experiments: dict) -> None:
    for name, module in (("speed", exp_speed), ("robustness", exp_robustness)):
        if name not in selected:
            continue
        _log(f"{name}: running alone in this process")
        start = time.monotonic()
        try:
            experiments[name] = {"status": "ok", **module.run(settings)}
        except Exception as exc:  # recorded and reported; the rest of the suite stands
            experiments[name] = {"status": "failed", "reason": f"{type(exc).__name__}: {exc}"}
        experiments[name]["seconds"] = time.monotonic() - start
        if name == "robustness" and experiments[name]["status"] == "ok":
            r = experiments[name]
            if r["passed"] < r["total"]:
                r["status"] = "partial"


def run_suite(settings: Settings, selected: tuple[str, ...], out: Path, report_path: Path, command: str) -> dict:
    torch.set_num_threads(settings.threads)
    started = time.monotonic()
    results = {"schema": SCHEMA, "mode": settings.mode, "command": command,
               "started": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
               "settings": settings.to_dict(), "selected": list(selected), "environment": _environment(settings),
               "experiments": {}}
    experiments = results["experiments"]
    if any(n in selected for n in (*POOL_EXPERIMENTS, "digits")):
        _pool_phase(settings, selected, experiments)
    _alone_phase(settings, selected, experiments)
    for name in EXPERIMENTS:
        experiments.setdefault(name, {"status": "not run", "reason": "not selected (--only)"})
    results["duration_seconds"] = time.monotonic() - started
    results = finite_or_none(results)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(out / "results.json", json.dumps(results, indent=1, allow_nan=False).encode())
    csv_files = tables.write_csvs(results, out)
    figure_files, figure_note = figures.write_figures(results, out / "figures")
    results["files"] = {"csv": csv_files, "figures": figure_files, "figures_note": figure_note}
    atomic_write_bytes(out / "results.json", json.dumps(results, indent=1, allow_nan=False).encode())
    text = report.render(results, out, report_path)
    atomic_write_bytes(report_path, text.encode())
    atomic_write_bytes(report_path.parent / "RESULTS_SNIPPET.md", report.snippet(results, report_path).encode())
    return results


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    gpu = torch.cuda.is_available()
    workers = args.workers or (1 if gpu else min(2, os.cpu_count() or 1))
    settings = (quick if args.quick else full)(workers=workers).with_overrides(seeds=args.seeds)
    out = Path(args.out).resolve() if args.out else (QUICK_OUT if args.quick else DEFAULT_OUT)
    report_path = Path(args.report).resolve() if args.report else (
        HERE / "REPORT.md" if out == DEFAULT_OUT.resolve() else out / "REPORT.md")
    command = "python -m benchmarks " + " ".join(sys.argv[1:] if argv is None else argv)
    try:
        results = run_suite(settings, args.only, out, report_path, command.strip())
    except KeyboardInterrupt:
        _log("benchmarks: interrupted; results were not written")
        return 130
    except (OSError, ValueError) as exc:
        _log(f"benchmarks: error: {exc}")
        return 1
    statuses = {k: v["status"] for k, v in results["experiments"].items() if not k.startswith("_")}
    _log(f"done in {results['duration_seconds']:.0f} s: {statuses}; report at {report_path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
