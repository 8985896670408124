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
from typing import Callable

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np
import ot
import torch

from benchmarks import (
    exp_budget,
    exp_chain,
    exp_digits,
    exp_fewshot,
    exp_robustness,
    exp_speed,
    exp_straight,
    exp_stress,
    figures,
    protocol,
    report,
    tables,
)
from benchmarks.context import prepare
from benchmarks.parallel import Runner, is_error
from benchmarks.settings import EXPERIMENTS, Settings, full, quick
from benchmarks.stats import finite_or_none
from benchmarks.store import Store, fingerprint
from gft.core.checkpoints import atomic_write_bytes
from gft.core.device import describe_device, resolve_device

SCHEMA = "gft-benchmarks/2"
HERE = Path(__file__).resolve().parent
DEFAULT_OUT = HERE / "results"
QUICK_OUT = DEFAULT_OUT / "quick"  # git-ignored: smoke-test numbers never overwrite the full results
# Submission order: the small experiments first, so a suite cut short still answers most endpoints.
POOL_EXPERIMENTS = {"straight": exp_straight, "chain": exp_chain, "budget": exp_budget, "fewshot": exp_fewshot,
                    "stress": exp_stress}


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
    p.add_argument("--out", default=None, help="folder for results.json, CSVs, figures/ and the runs/ cache (default: "
                                               "benchmarks/results, or benchmarks/results/quick with --quick)")
    p.add_argument("--report", default=None, help="REPORT.md path (default: benchmarks/REPORT.md for the full suite "
                                                   "in its default folder, else OUT/REPORT.md)")
    p.add_argument("--only", type=_only, default=EXPERIMENTS, help=f"comma-separated subset of {','.join(EXPERIMENTS)}; "
                   "the report still includes every experiment already in the runs/ cache")
    p.add_argument("--seeds", type=_positive, default=None, help="override the number of seeds")
    p.add_argument("--workers", type=_positive, default=None, help="processes for the runs (default: 2 on CPU, 1 with a GPU)")
    p.add_argument("--fresh", action="store_true", help="ignore the runs/ cache (recompute every run)")
    p.add_argument("--report-only", action="store_true", help="run nothing: rebuild results, figures and the report from "
                                                              "what the runs/ cache holds")
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


def _pool_phase(runner: Runner, settings: Settings, selected: tuple[str, ...], experiments: dict, read_only: bool,
                between: Callable[[], None] = lambda: None) -> None:
    """Pretraining and references, then every run of the pool experiments (selected, or cached when read_only).

    The runs behind primary endpoints go first, then ``between`` (the digits), then the rest: a suite cut
    short by its time still answers the declared questions.
    """
    names = [n for n in POOL_EXPERIMENTS if n in selected or read_only]
    sources, targets = set(), set()
    for name in names:
        src, tgt = POOL_EXPERIMENTS[name].needs(settings)
        sources |= src
        targets |= tgt
    start = time.monotonic()
    _log(f"preparing {len(sources)} source(s) x {settings.pretrained_seeds} pretrained seed(s) and {len(targets)} reference(s)")
    ctx = prepare(runner, settings, sources, targets, cached_only=not any(n in selected for n in POOL_EXPERIMENTS))
    prepared = time.monotonic() - start
    all_jobs, spans = [], {}
    for name in names:
        src, tgt = POOL_EXPERIMENTS[name].needs(settings)
        missing = ctx.has(src, tgt)
        if missing and name not in selected:
            continue  # read back only, and its pretraining is not cached: it stays "not run"
        if missing:
            experiments[name] = {"status": "failed", "reason": f"not prepared: {missing} ({'; '.join(ctx.failures)[:300]})"}
            continue
        new = POOL_EXPERIMENTS[name].jobs(ctx)
        spans[name] = (len(all_jobs), len(all_jobs) + len(new))
        all_jobs.extend(new)
    if read_only:  # the report includes what the cache holds for experiments that were not selected
        selected_spans = {n: spans[n] for n in spans if n in selected}
        others = {n: spans[n] for n in spans if n not in selected}
    else:
        selected_spans, others = spans, {}
    run_idx = [i for n, (a, b) in selected_spans.items() for i in range(a, b)]
    _log(f"runs: {len(run_idx)} on {settings.workers} worker(s)")
    start = time.monotonic()
    rows: list = [None] * len(all_jobs)
    first = [i for i in run_idx if all_jobs[i].primary]
    for part in (first, None, [i for i in run_idx if not all_jobs[i].primary]):
        if part is None:
            between()
            continue
        for i, row in zip(part, runner.map([all_jobs[i] for i in part])):
            rows[i] = row
    for name, (a, b) in others.items():
        for i in range(a, b):
            rows[i] = runner.store.get(all_jobs[i].key) if runner.store is not None else None
    pool_seconds = time.monotonic() - start
    for name, (a, b) in spans.items():
        part = [r for r in rows[a:b] if r is not None]
        errors = [r for r in part if is_error(r)]
        ok = [r for r in part if not is_error(r)]
        if name not in selected and not ok:
            continue  # nothing cached: the experiment stays "not run"
        expected = b - a
        status = "ok" if len(ok) == expected else ("failed" if not ok else "partial")
        experiments[name] = {"status": status, "runs": expected, "done": len(ok), "errors": errors, "rows": ok,
                             **(POOL_EXPERIMENTS[name].summarise(ok, ctx) if ok else {})}
        if name not in selected:
            experiments[name]["from_cache"] = True
    experiments["_pool"] = {"prepare_seconds": prepared, "runs_seconds": pool_seconds, "runs": len(run_idx),
                            "failures": ctx.failures}


def _digits_phase(runner: Runner, settings: Settings, selected: tuple[str, ...], experiments: dict, read_only: bool) -> None:
    if "digits" not in selected and not read_only:
        return
    if "digits" not in selected:  # cached only: read back what is there, never pretrain
        models = {}
        for job in exp_digits.pretrain_jobs(settings):
            row = runner.store.get(job.key) if runner.store is not None else None
            if row is not None:
                models[row["seed"]] = row
        if len(models) < settings.pretrained_seeds:
            return
        rows = [runner.store.get(j.key) for j in exp_digits.jobs(settings, models)]
        ok = [r for r in rows if r is not None]
        if ok:
            experiments["digits"] = {"status": "ok" if len(ok) == len(rows) else "partial", "runs": len(rows), "done": len(ok),
                                     "errors": [], "rows": ok, "from_cache": True, **exp_digits.summarise(ok, settings)}
        return
    start = time.monotonic()
    models, failures = exp_digits.prepare(runner, settings)
    if len(models) < settings.pretrained_seeds:
        experiments["digits"] = {"status": "failed", "reason": f"pretraining failed: {'; '.join(failures)}"}
        return
    jobs = exp_digits.jobs(settings, models)
    rows = runner.map(jobs)
    ok = [r for r in rows if not is_error(r)]
    errors = [r for r in rows if is_error(r)]
    status = "ok" if not errors else ("failed" if not ok else "partial")
    experiments["digits"] = {"status": status, "runs": len(rows), "done": len(ok), "errors": errors, "rows": ok,
                             "seconds": time.monotonic() - start, **(exp_digits.summarise(ok, settings) if ok else {})}


def _alone_phase(settings: Settings, selected: tuple[str, ...], experiments: dict, store: Store | None) -> None:
    """Speed and robustness, alone in this process (timings); kept in the cache like every run."""
    for name, module in (("speed", exp_speed), ("robustness", exp_robustness)):
        key = f"{name}/{fingerprint(settings.to_dict() | {'workers': 0, 'seeds': 0})}"
        if name not in selected:
            cached = store.get(key) if store is not None else None
            if cached is not None:
                experiments[name] = {**cached, "from_cache": True}
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
        if store is not None and experiments[name]["status"] != "failed":
            store.put(key, experiments[name])


def run_suite(settings: Settings, selected: tuple[str, ...], out: Path, report_path: Path, command: str,
              fresh: bool = False) -> dict:
    torch.set_num_threads(settings.threads)
    started = time.monotonic()
    results = {"schema": SCHEMA, "mode": settings.mode, "command": command,
               "started": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
               "settings": settings.to_dict(), "selected": list(selected), "environment": _environment(settings),
               "experiments": {}}
    experiments = results["experiments"]
    store = None if fresh else Store(out / "runs", _log)
    with Runner(settings.workers, settings.threads, _log, store) as runner:
        # With a cache, experiments left out by --only are still read back, so the report covers all that is done.
        _pool_phase(runner, settings, selected, experiments, read_only=store is not None,
                    between=lambda: _digits_phase(runner, settings, selected, experiments, read_only=store is not None))
    _alone_phase(settings, selected, experiments, store)
    for name in EXPERIMENTS:
        experiments.setdefault(name, {"status": "not run", "reason": "not selected (--only) and nothing cached"})
    results["endpoints"] = protocol.evaluate(results)
    results["duration_seconds"] = time.monotonic() - started
    results = finite_or_none(results)
    out.mkdir(parents=True, exist_ok=True)
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
    if args.report_only and args.fresh:
        _log("benchmarks: error: --report-only reads the runs/ cache; --fresh would ignore it")
        return 2
    selected = () if args.report_only else args.only
    try:
        results = run_suite(settings, selected, out, report_path, command.strip(), fresh=args.fresh)
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
