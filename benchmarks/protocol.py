"""The declared analysis: which comparisons are primary endpoints, and how every verdict is reached.

Declared before any result (this text opens REPORT.md, whatever the numbers): one primary endpoint
per question the method's claims raise, GFT against its baseline, paired by seed. Their p-values are
Holm-corrected as one family; everything else in the report is secondary (exploratory): shown with
its interval and unadjusted p, and never called a finding on its own.
"""

from __future__ import annotations

from benchmarks.stats import ALPHA, holm, paired

PRIMARY = (
    ("budget", "Equal budget (full data)", "For each budget shift: the energy to the target after the third budget "
     "(2,000 steps in the full suite; the last budget when there are fewer), GFT (its anneal fitted to that budget) against standard fine-tuning."),
    ("fewshot", "Few data from a related source", "For each few-data shift at N = 16: the energy to the full target law of "
     "the validation-chosen GFT checkpoint against the validation-chosen (early-stopped) standard checkpoint."),
    ("stress", "Stability under stress", "The largest rise of the energy curve above its running best (read every 50 steps), "
     "averaged over the clipped learning-rate x batch grid, GFT against standard."),
    ("straight", "Retention of straight paths", "From an OT-pretrained model, fine-tuned with the independent coupling: the "
     "energy after 2 Euler steps, GFT against standard."),
    ("chain", "An evolving target", "After the whole chain of shifts: the energy to the current (last) target, GFT against "
     "standard."),
    ("digits", "Images", "Digits 0-4 -> 5-9: the Frechet distance after the same number of steps, GFT against standard."),
)

RULES = (
    "Every comparison pairs the two methods seed by seed (same data draw, same pretrained model, same evaluation noise).",
    "Differences are A - B (A is GFT or a GFT variant); for distances, negative favours A.",
    "Intervals are 95% two-sided, from Student's t with n - 1 degrees of freedom over the paired differences "
    "(not adjusted for multiplicity: an interval that excludes 0 can still miss the Holm threshold).",
    f"A primary endpoint is called a difference when its Holm-adjusted paired-t p-value is below {ALPHA} "
    "(family: all primary endpoints); otherwise 'no difference detected', with the interval showing what the data allow.",
    "Effect sizes: the mean paired difference with its interval, the same relative to the baseline's mean, and dz "
    "(mean difference over the sd of the differences).",
    "Each distance sits beside its null band: the same measure for fresh target draws of the same size (mean and sd over "
    "independent draws). A value inside the band cannot be told from the target at that sample size.",
)


def evaluate(results: dict) -> list[dict]:
    """Every comparison of every experiment with its statistics; primary ones Holm-corrected together."""
    out = []
    for name, e in results["experiments"].items():
        for c in e.get("comparisons", []) if isinstance(e, dict) else []:
            stats = paired(c["values_a"], c["values_b"])
            out.append({**{k: v for k, v in c.items() if k not in ("values_a", "values_b")}, "experiment": name,
                        "primary": bool(c.get("primary_candidate")), "stats": stats.to_dict(),
                        "values_a": c["values_a"], "values_b": c["values_b"]})
    primary = [i for i, c in enumerate(out) if c["primary"]]
    adjusted = holm([out[i]["stats"]["p"] for i in primary])
    for i, p in zip(primary, adjusted):
        out[i]["stats"]["p_holm"] = p
    for c in out:
        c["verdict"] = verdict(c)
    return out


def verdict(c: dict) -> str:
    s = c["stats"]
    p = s["p_holm"] if c["primary"] else s["p"]
    if p is None or s["diff"] is None:
        return f"too few pairs ({s['n']})"
    if p >= ALPHA:
        return "no difference detected"
    a_lower = s["diff"] < 0
    better = a_lower == c["lower_is_better"]
    return f"{c['a']} better" if better else f"{c['a']} worse"
