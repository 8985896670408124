"""REPORT.md and the README "Results" snippet, written from results.json alone (no numbers typed by hand)."""

from __future__ import annotations

import os
from pathlib import Path

from benchmarks import protocol
from benchmarks.common import VARIANTS
from benchmarks.exp_straight import STEP_COUNTS


def fmt(summary: dict | None, digits: int = 3) -> str:
    """'mean ± sd' of a summary dict (see benchmarks.measures.Summary)."""
    if not summary or summary.get("mean") is None:
        return "n/a"
    sd = f" ± {summary['sd']:.{digits}g}" if summary.get("sd") is not None else ""
    miss = f" ({summary['missing']} n/a)" if summary.get("missing") else ""
    return f"{summary['mean']:.{digits}g}{sd}{miss}"


def num(value, digits: int = 3) -> str:
    return "n/a" if value is None else f"{value:.{digits}g}"


def table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def _fig(results: dict, out: Path, report_path: Path, name: str, caption: str) -> str:
    if name not in results.get("files", {}).get("figures", []):
        return ""
    rel = os.path.relpath(out / "figures" / name, report_path.parent)
    return f"\n![{caption}]({rel})\n"


def _status_line(e: dict) -> str | None:
    if e.get("status") in ("skipped", "not run", "failed"):
        return f"**{e['status']}**: {e.get('reason', '')}"
    if e.get("errors"):
        return f"**{len(e['errors'])} run(s) failed** (first: {e['errors'][0]['tag']}: {e['errors'][0]['error']})"
    return None


def _section(results: dict, key: str, title: str) -> tuple[dict, list[str]]:
    """An experiment's results and the section's opening lines: its title and, if any, its status."""
    e = results["experiments"].get(key, {})
    lines = [title, ""]
    status = _status_line(e)
    if status:
        lines += [status, ""]
    return e, lines


def _speed(results: dict, out: Path, report_path: Path) -> list[str]:
    e, lines = _section(results, "speed", "## 7. Speed")
    if e.get("status") != "ok":
        return lines
    tr = e["training"]
    lines += [f"Device: {e['device']}. Model: {tr['model']}, batch {tr['batch']}, {tr['steps_timed']} timed steps after "
              f"20 warm-up steps, median of {tr['rounds']} interleaved round(s). Load average {e['load_average']['before']:.2f} "
              f"before and {e['load_average']['after']:.2f} after on {e['load_average']['cores']} cores.",
              "", "The reference is a minimal hand-written loop of the same model (draw x0 and x1, pair them by ot.emd's "
              "permutation for OT, draw t, regress x1 - x0 with Adam; no prefetch thread, no gradient clipping, no "
              "logging). `trainer` is `gft.core.training.Trainer` (method pretrain; gft+ot adds the frozen pretrained "
              "model's forward pass) timed by wall clock around `run()`.", ""]
    lines.append(table(["loop", "steps/s (median)", "per round"],
                       [[k, num(v), ", ".join(num(x) for x in tr["per_round"][k])] for k, v in tr["steps_per_second"].items()]))
    lines.append(table(["ratio", "value"], [[k, num(v)] for k, v in tr["ratios"].items()]))
    if tr.get("torchcfm_skipped"):
        lines += [f"TorchCFM comparison skipped: {tr['torchcfm_skipped']}.", ""]
    else:
        lines += [f"TorchCFM: {tr['torchcfm']} (`ExactOptimalTransportConditionalFlowMatcher`, sigma 0, driving the "
                  "same model; it samples the OT plan with replacement).", ""]
    lines += ["Targets:", ""]
    for name, t in tr["targets"].items():
        lines.append(f"- {name}: {num(t['value'])} (target {t['target']}): **{'met' if t['met'] else 'missed'}**")
    lines += ["", "OT cost per batch (seconds per solve, median):", ""]
    lines.append(table(["coupling", "batch", "seconds", "note"],
                       [[r["coupling"], r["batch"], num(r["seconds"]), r.get("note", f"{r.get('repeats', '')} repeat(s)")]
                        for r in e["ot_per_batch"]]))
    lines.append(_fig(results, out, report_path, "ot_cost.png", "OT seconds per batch"))
    lines += ["", "Sampling 2,000 trajectories of 100 Euler steps (target < 0.5 s on CPU):", ""]
    lines.append(table(["torch threads", "keep trajectory", "seconds (median)", "target met"],
                       [[r["threads"], r["keep_trajectory"], num(r["seconds"]), "yes" if r["met"] else "**no**"]
                        for r in e["sampling"]]))
    return lines


def _robustness(results: dict) -> list[str]:
    e = results["experiments"].get("robustness", {})
    lines = ["## Robustness", ""]
    if e.get("status") in ("skipped", "not run", "failed"):
        return lines + [f"**{e['status']}**: {e.get('reason', '')}", ""]
    lines += [f"{e['passed']} of {e['total']} checks passed. {e['note']}.", ""]
    lines.append(table(["check", "result", "message"],
                       [[c["check"], "pass" if c["passed"] else "**FAIL**", c["message"].replace("|", "/")]
                        for c in e["checks"]]))
    return lines


def _robustness(results: dict) -> list[str]:
    e = results["experiments"].get("robustness", {})
    lines = ["## Robustness", ""]
    if e.get("status") in ("skipped", "not run", "failed"):
        return lines + [f"**{e['status']}**: {e.get('reason', '')}", ""]
    lines += [f"{e['passed']} of {e['total']} checks passed. {e['note']}.", ""]
    lines.append(table(["check", "result", "message"],
                       [[c["check"], "pass" if c["passed"] else "**FAIL**", c["message"].replace("|", "/")]
                        for c in e["checks"]]))
    return lines


def sci(value, digits: int = 2) -> str:
    """Energy distances live near 0 (and can read below it): fixed-point with enough places, or scientific."""
    if value is None:
        return "n/a"
    return f"{value:.{digits}e}" if value != 0 and abs(value) < 1e-3 else f"{value:.4f}"


def ms(summary: dict | None) -> str:
    """'mean ± sd' of a stats.Summary dict in the report's number style."""
    if not summary or summary.get("mean") is None:
        return "n/a"
    sd = f" ± {sci(summary['sd'])}" if summary.get("sd") is not None else ""
    miss = f" ({summary['missing']} n/a)" if summary.get("missing") else ""
    return f"{sci(summary['mean'])}{sd}{miss}"


def band(null: dict | None) -> str:
    if not null or null.get("mean") is None:
        return "n/a"
    return f"{sci(null['mean'])} ± {sci(null['sd'])}"


def _diff(c: dict) -> str:
    s = c["stats"]
    if s["diff"] is None:
        return "n/a"
    return f"{sci(s['diff'])} [{sci(s['ci_low'])}, {sci(s['ci_high'])}]"


def _rel(c: dict) -> str:
    r = c["stats"]["relative"]
    return "n/a" if r is None else f"{100 * r:+.0f}%"


def _p(value) -> str:
    if value is None:
        return "n/a"
    return "< 0.001" if value < 1e-3 else f"{value:.3f}"


def _endpoint_rows(endpoints: list[dict]) -> list[list[str]]:
    rows = []
    for c in endpoints:
        s = c["stats"]
        rows.append([c["question"], f"{c['a']}: {sci(s['mean_a'])}", f"{c['b']}: {sci(s['mean_b'])}", band(c.get("null")),
                     _diff(c), _rel(c), "n/a" if s["dz"] is None else f"{s['dz']:+.2f}", str(s["n"]),
                     _p(s["p_holm"] if c["primary"] else s["p"]), f"**{c['verdict']}**" if "better" in c["verdict"] or
                     "worse" in c["verdict"] else c["verdict"]])
    return rows


ENDPOINT_HEADER = ["question", "A (mean)", "B (mean)", "null band", "A - B [95% CI]", "relative", "dz", "pairs", "p", "verdict"]


def _header(results: dict) -> list[str]:
    env, s = results["environment"], results["settings"]
    lines = ["# GFT benchmark report", "",
             f"Generated by `{results['command']}` on {results['started']} ({results['mode']} mode, "
             f"{results['duration_seconds'] / 60:.1f} min for this invocation; runs already in the `runs/` cache were read "
             "back, not rerun). Machine-readable: `results.json` and the CSVs beside the figures.", ""]
    if results["mode"] == "quick":
        lines += [f"> **Quick mode**: smoke-test sizes ({s['seeds']} seeds, a few dozen steps). These numbers check that the "
                  "suite runs; they are not results. Run `python -m benchmarks` for the full suite.", ""]
    if env["gpu_available"]:
        lines += [f"Device: **{env['gpu_name']}** (CUDA), {env['cpu_count']} CPU cores.", ""]
    else:
        lines += [f"**No GPU was available**: every number is a CPU number ({env['cpu_count']} cores, "
                  f"{env['torch_threads']} torch thread per process, {env['workers']} worker process(es)).", ""]
    lines += [f"Load average when this invocation started: {env['load_average_at_start']:.2f} on {env['cpu_count']} cores. "
              f"Versions: torch {env['versions']['torch']}, numpy {env['versions']['numpy']}, POT {env['versions']['pot']}, "
              f"Python {env['python']}. Seeds: {s['seeds']} per configuration, from {s['pretrained_seeds']} pretrained models "
              "(seed s starts from pretrained model s mod that number).", ""]
    return lines


def _declared() -> list[str]:
    lines = ["## Declared endpoints and rules", "",
             "Fixed before any result was computed (this section is the same whatever the numbers say):", ""]
    lines += [f"{i}. **{title}.** {text}" for i, (_, title, text) in enumerate(protocol.PRIMARY, 1)]
    lines += ["", "Rules:", ""] + [f"- {r}" for r in protocol.RULES]
    lines += ["", "Measures: the **energy** of a 2D model is the unbiased energy distance of "
              "its samples (100 Euler steps from seeded noise) to a fixed reference draw of the target law; it is about 0 "
              "for a perfect model and can read slightly negative. The **FD** of a digit model is the Frechet distance in "
              "the shipped classifier's features to held-out images.", ""]
    return lines


def _where(results: dict) -> list[str]:
    endpoints = results.get("endpoints", [])
    primary = [c for c in endpoints if c["primary"]]
    lines = ["## Where GFT helps, where it does not, by how much", ""]
    if not primary:
        return lines + ["No primary endpoint ran.", ""]
    lines += [f"Primary endpoints ({len(primary)}, Holm-corrected together; p is the adjusted p-value). Differences are "
              "GFT minus the baseline: negative favours GFT for distances and rises.", ""]
    lines.append(table(ENDPOINT_HEADER, _endpoint_rows(primary)))
    helps = [c for c in primary if c["verdict"].endswith("better")]
    hurts = [c for c in primary if c["verdict"].endswith("worse")]
    none = [c for c in primary if c["verdict"] == "no difference detected"]
    lines += [f"In plain words: GFT was better on {len(helps)}, worse on {len(hurts)} and not distinguishable on "
              f"{len(none)} of the {len(primary)} primary endpoints."]
    for c in helps:
        lines.append(f"- **Helps**: {c['question']} (by {_rel(c).lstrip('+-')} of the baseline, 95% CI of the difference "
                     f"{_diff(c).split(' ', 1)[1]}).")
    for c in hurts:
        lines.append(f"- **Costs**: {c['question']} (worse by {_rel(c).lstrip('+-')} of the baseline, 95% CI "
                     f"{_diff(c).split(' ', 1)[1]}).")
    for c in none:
        lines.append(f"- **No difference detected**: {c['question']} (95% CI of the difference {_diff(c).split(' ', 1)[1]}).")
    secondary = [c for c in endpoints if not c["primary"] and c["verdict"] not in ("no difference detected",)
                 and not c["verdict"].startswith("too few")]
    if secondary:
        lines += ["", f"Secondary comparisons with an unadjusted p below 0.05 ({len(secondary)} of "
                  f"{sum(not c['primary'] for c in endpoints)}; exploratory, not findings on their own):", ""]
        lines.append(table(ENDPOINT_HEADER, _endpoint_rows(secondary)))
    return lines + [""]


def _budget(results: dict, out: Path, report_path: Path) -> list[str]:
    e, lines = _section(results, "budget", "## 1. Equal budget (full data)")
    if not e.get("table"):
        return lines
    lines += ["GFT runs once per budget B (anneal over 0.8 B, then tau = 0); standard's one long run is read at every "
              "budget (without a schedule, its first B steps are a B-step run). Energy mean ± sd over seeds; seconds are "
              "training seconds (evaluation excluded).", ""]
    rows = [[t["shift"], t["budget"], t["point"], t["step"], ms(t["standard"]), ms(t["gft"]),
             num(t["standard_seconds"]["mean"]), num(t["gft_seconds"]["mean"]), band(t["null"])] for t in e["table"]]
    lines.append(table(["shift", "budget", "read at", "step", "standard", "gft", "standard s", "gft s", "null band"], rows))
    lines.append(_fig(results, out, report_path, "budget.png", "Energy against steps and against training seconds"))
    return lines


def _fewshot(results: dict, out: Path, report_path: Path) -> list[str]:
    e, lines = _section(results, "fewshot", "## 2. Few data from a related source")
    if not e.get("table"):
        return lines
    s = results["settings"]
    lines += [f"Each run holds out {s['val_fraction']:.0%} of its N points (at least 2) for validation, read every "
              f"{s['fewshot_every']} steps over {s['fewshot_steps']} steps; 'best' is the validation-chosen checkpoint. "
              "Energy to the *full* target law; NN ratio: nearest-neighbour distance of samples to the training points over "
              "that of fresh target draws (1 = generalises, toward 0 = copies the points). Best lambda: the pretrained "
              "drift's weight where the checkpoint was taken (0 = the target alone).", ""]
    rows = []
    for t in e["table"]:
        best = t.get("best", {})
        rows.append([t["shift"], t["size"], t["variant"], ms(t["final"]["energy"]), ms(best.get("energy")),
                     fmt(t["final"]["nn_ratio"]), fmt(best.get("nn_ratio")), fmt(t.get("best_lambda")), band(t["null"])])
    lines.append(table(["shift", "N", "method", "final energy", "best energy", "final NN", "best NN", "best lambda",
                        "null band"], rows))
    lines += ["Methods: " + "; ".join(f"`{k}`: {v.about}" for k, v in VARIANTS.items()) + ".", ""]
    lines.append(_fig(results, out, report_path, "fewshot.png", "Energy to the full law against N"))
    return lines


def _stress(results: dict, out: Path, report_path: Path) -> list[str]:
    e, lines = _section(results, "stress", "## 3. Stability under stress")
    if not e.get("table"):
        return lines
    s = results["settings"]
    lines += [f"{s['stress_shift']}, {s['stress_steps']} steps, energy of {s['curve_n']} samples read every "
              f"{s['stress_every']} steps. Divergence: the library's rule stopped the run, or a reading exceeded 1,000 times the "
              "first (a blow-up the loss rule did not catch in time). Largest rise: how far the curve "
              "climbed above its best so far (spikes). Late jitter: the curve's total upward movement over the last 20% of "
              "steps, where both methods train on the target alone (a steady descent reads 0).", ""]
    rows = []
    for t in e["table"]:
        row = [f"{t['lr']:g}", t["batch"], "on" if t["clip"] else "off"]
        for v in ("standard", "gft"):
            c = t[v]
            row += [f"{c['diverged']}/{c['runs']}", ms(c["largest_rise"]), ms(c["late_up"])]
        rows.append(row)
    lines.append(table(["lr", "batch", "clip", "std diverged", "std rise", "std late jitter", "gft diverged", "gft rise",
                        "gft late jitter"], rows))
    d = e.get("divergence", {})
    if d:
        lines += ["Divergence over the whole grid: " + "; ".join(
            f"{v} {x['diverged']}/{x['runs']} ({100 * x['rate']:.0f}%, 95% CI {100 * x['rate_ci'][0]:.0f}-"
            f"{100 * x['rate_ci'][1]:.0f}%)" for v, x in d.items() if x["rate"] is not None) + ".", ""]
    lines.append(_fig(results, out, report_path, "stress.png", "Energy curves under stress"))
    return lines


def _straight(results: dict, out: Path, report_path: Path) -> list[str]:
    e, lines = _section(results, "straight", "## 4. Retention of straight paths")
    if not e.get("table"):
        return lines
    lines += ["Straightness: E int |(x1 - x0) - v|^2 dt along 100-step Euler paths, 0 for straight constant-speed paths "
              "(lower is straighter). Energy after k Euler steps (few steps need straight paths).",
              f"Null band at this sample size: {band(e.get('null'))}.", ""]
    rows = [[t["variant"], fmt(t["straightness"])] + [ms(t[f"energy_{k}"]) for k in STEP_COUNTS] for t in e["table"]]
    lines.append(table(["model", "straightness"] + [f"energy, {k} step(s)" for k in STEP_COUNTS], rows))
    lines.append(_fig(results, out, report_path, "straight.png", "Energy against Euler steps"))
    return lines


def _chain(results: dict, out: Path, report_path: Path) -> list[str]:
    e, lines = _section(results, "chain", "## 5. An evolving target")
    if not e.get("table"):
        return lines
    s = results["settings"]
    lines += [f"Chain {' -> '.join(s['chain'])}, {s['chain_steps']} steps per stage (each stage starts from the last; "
              "GFT's f_pre is the previous stage's model). Energy to every law seen so far after each stage.", ""]
    rows = [[t["stage"], t["target"], t["law"], ms(t["standard"]), ms(t["gft"]), band(t["null"])] for t in e["table"]]
    lines.append(table(["stage", "training on", "measured on", "standard", "gft", "null band"], rows))
    lines.append(_fig(results, out, report_path, "chain.png", "Energy on each law along the chain"))
    return lines


def _digits(results: dict) -> list[str]:
    e, lines = _section(results, "digits", "## 6. Images (digits 0-4 -> 5-9)")
    if not e.get("table"):
        return lines
    s = results["settings"]
    null = e.get("null", {})
    lines += [f"{s['digits_steps']} fine-tuning steps (batch {s['digits_batch']}), FD of {s['digits_eval_n']} samples "
              f"(100 Euler steps) to the held-out 5-9 images. Null band: real training images (subsets of "
              f"{null.get('n')}) against the same held-out set, {band(null)}.", ""]
    rows = [[t["variant"], fmt(t["fd"]), fmt(t["class_entropy"]), fmt(t["nn_distance_ratio"]), fmt(t["steps_per_second"])]
            for t in e["table"]]
    lines.append(table(["method", "FD", "class entropy (nats; max ln 5 = 1.61)", "NN ratio", "steps/s"], rows))
    return lines


def _all(results: dict) -> list[str]:
    endpoints = results.get("endpoints", [])
    lines = ["## Every comparison", "",
             "Primary endpoints carry Holm-adjusted p; the rest unadjusted p (exploratory).", ""]
    if endpoints:
        lines.append(table(["experiment", "primary"] + ENDPOINT_HEADER,
                           [[c["experiment"], "yes" if c["primary"] else ""] + r for c, r in zip(endpoints, _endpoint_rows(endpoints))]))
    return lines


def render(results: dict, out: Path, report_path: Path) -> str:
    lines = _header(results) + _declared() + _where(results)
    lines += _budget(results, out, report_path) + [""]
    lines += _fewshot(results, out, report_path) + [""]
    lines += _stress(results, out, report_path) + [""]
    lines += _straight(results, out, report_path) + [""]
    lines += _chain(results, out, report_path) + [""]
    lines += _digits(results) + [""]
    lines += _speed(results, out, report_path) + [""]
    lines += _robustness(results) + [""]
    lines += _all(results) + [""]
    note = results.get("files", {}).get("figures_note")
    lines += ["## Reproduce", ""] + ([f"- {note}", ""] if note else [])
    lines += ["```", "python -m benchmarks                  # full suite: about an hour on 2 quiet CPU cores, resumable",
              "python -m benchmarks --only fewshot   # one experiment; the report keeps what the runs/ cache holds",
              "python -m benchmarks --quick          # smoke test for CI, a few minutes: benchmarks/results/quick/", "```",
              "", "Every task's result is cached under `runs/` beside results.json as soon as it finishes; an interrupted run "
              "resumes where it stopped (`--fresh` recomputes).", ""]
    return "\n".join(lines)


def snippet(results: dict, report_path: Path) -> str:
    env = results["environment"]
    device = env["gpu_name"] if env["gpu_available"] else f"CPU only ({env['cpu_count']} cores, no GPU)"
    primary = [c for c in results.get("endpoints", []) if c["primary"]]
    lines = ["## Results", "",
             f"From `{results['command']}` ({results['mode']} mode, {device}); {results['settings']['seeds']} seeds paired "
             "across methods, Holm-corrected primary endpoints; tables, figures and method notes in "
             "[benchmarks/REPORT.md](benchmarks/REPORT.md).", ""]
    if primary:
        lines.append(table(["question", "GFT - baseline [95% CI]", "relative", "Holm p", "verdict"],
                           [[c["question"], _diff(c), _rel(c), _p(c["stats"]["p_holm"]), c["verdict"]] for c in primary]))
    return "\n".join(lines) + "\n"
