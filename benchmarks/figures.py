"""PNG figures of the results with matplotlib (static export without a browser, unlike plotly's kaleido).

matplotlib is optional: without it the figures are skipped and the report says so.
"""

from __future__ import annotations

import io
from pathlib import Path

from benchmarks.exp_straight import STEP_COUNTS
from gft.core.checkpoints import atomic_write_bytes

DPI = 110


def _plt():
    import matplotlib

    matplotlib.use("Agg")  # no display; must precede pyplot
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, bbox_inches="tight")
    atomic_write_bytes(path, buf.getvalue())
    return path.name


def _legend(target, axes) -> None:
    """One legend holding every labelled line of ``axes`` (panels may not all show every method)."""
    seen = {}
    for ax in axes:
        for handle, label in zip(*ax.get_legend_handles_labels()):
            seen.setdefault(label, handle)
    target.legend(list(seen.values()), list(seen), fontsize=7, loc="upper right")


def _nan(values) -> list[float]:
    return [float("nan") if v is None else v for v in values]


def _band(ax, null: dict | None) -> None:
    """The null band as a grey strip (mean +- 2 sd): where fresh target draws read."""
    if null and null.get("mean") is not None:
        ax.axhspan(null["mean"] - 2 * null["sd"], null["mean"] + 2 * null["sd"], color="0.85", zorder=0,
                   label="null band (target draws, ±2 sd)")


def _budget(plt, e: dict, path: Path) -> str | None:
    rows = [t for t in e.get("table", []) if t["point"] == "budget"]
    shifts = list(dict.fromkeys(t["shift"] for t in rows))
    if not shifts:
        return None
    fig, axes = plt.subplots(2, len(shifts), figsize=(4.6 * len(shifts), 6.6), squeeze=False)
    for j, shift in enumerate(shifts):
        mine = [t for t in rows if t["shift"] == shift]
        for v in ("standard", "gft"):
            means = _nan(t[v]["mean"] for t in mine)
            sds = _nan(t[v]["sd"] or 0.0 for t in mine)
            axes[0][j].errorbar([t["step"] for t in mine], means, yerr=sds, marker="o", capsize=3, label=v)
            axes[1][j].errorbar(_nan(t[f"{v}_seconds"]["mean"] for t in mine), means, yerr=sds, marker="o", capsize=3, label=v)
        for i in (0, 1):
            _band(axes[i][j], mine[0]["null"])
            axes[i][j].set_xscale("log")
        axes[0][j].set_title(shift, fontsize=10)
        axes[0][j].set_xlabel("budget (steps)")
        axes[1][j].set_xlabel("training seconds")
    for i in (0, 1):
        axes[i][0].set_ylabel("energy to the target")
    _legend(axes[0][-1], axes[0])
    return _save(fig, path)


def _fewshot(plt, e: dict, path: Path) -> str | None:
    rows = e.get("table", [])
    shift = rows[0]["shift"] if rows else None
    mine = [t for t in rows if t["shift"] == shift]
    sizes = sorted({t["size"] for t in mine})
    if len(sizes) < 2:
        return None
    fig, ax = plt.subplots(figsize=(6.2, 4.0))
    for variant in dict.fromkeys(t["variant"] for t in mine):
        pts = [t for t in mine if t["variant"] == variant]
        if len(pts) < 2:
            continue
        for which, style in (("final", "--"), ("best", "-")):
            if which not in pts[0]:
                continue
            ax.errorbar([t["size"] for t in pts], _nan(t[which]["energy"]["mean"] for t in pts),
                        yerr=_nan(t[which]["energy"]["sd"] or 0.0 for t in pts), ls=style, marker="o", capsize=3,
                        label=f"{variant} ({which})" if variant != "pretrained" else "pretrained")
    _band(ax, mine[0]["null"])
    ax.set_xscale("log", base=2)
    ax.set_xticks(sizes, [str(n) for n in sizes])
    ax.set_yscale("symlog", linthresh=1e-3)
    ax.set_xlabel("target points N")
    ax.set_ylabel("energy to the full target law")
    ax.set_title(shift, fontsize=10)
    ax.legend(fontsize=7)
    return _save(fig, path)


def _stress(plt, e: dict, steps: list[int], path: Path) -> str | None:
    curves = e.get("curves", {})
    if not curves:
        return None
    fig, ax = plt.subplots(figsize=(6.2, 4.0))
    for name, values in curves.items():
        ax.plot(steps[: len(values)], values, ls="-" if name.startswith("gft") else "--", label=name)
    ax.set_yscale("symlog", linthresh=1e-3)
    ax.set_xlabel("fine-tuning step")
    ax.set_ylabel("energy (mean over seeds that did not diverge)")
    ax.set_title("clipped, smallest batch", fontsize=10)
    ax.legend(fontsize=7)
    return _save(fig, path)


def _straight(plt, e: dict, path: Path) -> str | None:
    rows = e.get("table", [])
    if not rows:
        return None
    fig, ax = plt.subplots(figsize=(5.6, 3.8))
    for t in rows:
        ax.errorbar(STEP_COUNTS, _nan(t[f"energy_{k}"]["mean"] for k in STEP_COUNTS),
                    yerr=_nan(t[f"energy_{k}"]["sd"] or 0.0 for k in STEP_COUNTS), marker="o", capsize=3, label=t["variant"])
    _band(ax, e.get("null"))
    ax.set_xscale("log", base=2)
    ax.set_xticks(STEP_COUNTS, [str(k) for k in STEP_COUNTS])
    ax.set_yscale("symlog", linthresh=1e-3)
    ax.set_xlabel("Euler steps")
    ax.set_ylabel("energy to the target")
    ax.legend(fontsize=7)
    return _save(fig, path)


def _chain(plt, e: dict, path: Path) -> str | None:
    rows = e.get("table", [])
    laws = list(dict.fromkeys(t["law"] for t in rows))
    if not laws:
        return None
    fig, axes = plt.subplots(1, len(laws), figsize=(3.4 * len(laws), 3.4), squeeze=False, sharey=True)
    for ax, law in zip(axes[0], laws):
        mine = [t for t in rows if t["law"] == law]
        for v in ("standard", "gft"):
            ax.errorbar([t["stage"] for t in mine], _nan(t[v]["mean"] for t in mine), yerr=_nan(t[v]["sd"] or 0.0 for t in mine),
                        marker="o", capsize=3, label=v)
        _band(ax, mine[0]["null"])
        ax.set_title(f"measured on {law}", fontsize=9)
        ax.set_xlabel("after stage")
        ax.set_yscale("symlog", linthresh=1e-3)
    axes[0][0].set_ylabel("energy")
    _legend(axes[0][-1], axes[0])
    return _save(fig, path)


def _ot_cost(plt, rows: list[dict], path: Path) -> str | None:
    if not rows:
        return None
    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    for name in dict.fromkeys(r["coupling"] for r in rows):
        pts = [(r["batch"], r["seconds"]) for r in rows if r["coupling"] == name and r["seconds"] is not None]
        if pts:
            ax.plot(*zip(*pts), marker="o", label=name)
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("batch size")
    ax.set_ylabel("seconds per coupling solve")
    ax.legend(fontsize=7)
    return _save(fig, path)


def write_figures(results: dict, folder: Path) -> tuple[list[str], str | None]:
    """Write every figure the results allow; returns the file names and a note when none could be made."""
    try:
        plt = _plt()
    except ImportError:
        return [], "matplotlib is not installed: figures were skipped (pip install matplotlib)"
    folder.mkdir(parents=True, exist_ok=True)
    ex = results["experiments"]
    made = []
    try:
        made.append(_budget(plt, ex.get("budget", {}), folder / "budget.png"))
        made.append(_fewshot(plt, ex.get("fewshot", {}), folder / "fewshot.png"))
        made.append(_stress(plt, ex.get("stress", {}), ex.get("stress", {}).get("curve_steps", []), folder / "stress.png"))
        made.append(_straight(plt, ex.get("straight", {}), folder / "straight.png"))
        made.append(_chain(plt, ex.get("chain", {}), folder / "chain.png"))
        made.append(_ot_cost(plt, ex.get("speed", {}).get("ot_per_batch", []), folder / "ot_cost.png"))
    finally:
        plt.close("all")
    return [m for m in made if m], None
