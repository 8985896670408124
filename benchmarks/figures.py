"""PNG figures of the results with matplotlib (static export without a browser, unlike plotly's kaleido).

matplotlib is optional: without it the figures are skipped and the report says so.
"""

from __future__ import annotations

import io
from pathlib import Path

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


def _curves(plt, curves: list[dict], key: str, ylabel: str, path: Path, floor: bool) -> str | None:
    panels = list(dict.fromkeys(c[key] for c in curves))
    if not panels:
        return None
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.4), squeeze=False)
    for ax, panel in zip(axes[0], panels):
        for c in (c for c in curves if c[key] == panel):
            mean = [m if m is not None else float("nan") for m in c["mean"]]
            sd = [s if s is not None else 0.0 for s in c["sd"]]
            ax.plot(c["steps"], mean, label=c["label"], lw=1.5)
            ax.fill_between(c["steps"], [m - s for m, s in zip(mean, sd)], [m + s for m, s in zip(mean, sd)], alpha=0.15)
        if floor:
            floors = [c["floor"] for c in curves if c[key] == panel and c.get("floor") is not None]
            if floors:
                ax.axhline(floors[0], color="k", ls="--", lw=0.8, label="W2 floor")
                ax.axhline(1.5 * floors[0], color="grey", ls=":", lw=0.8, label="1.5x floor")
        ax.set_title(panel, fontsize=10)
        ax.set_xlabel("fine-tuning step")
        ax.set_yscale("log")
    axes[0][0].set_ylabel(ylabel)
    _legend(axes[0][-1], axes[0])
    return _save(fig, path)


def _legend(target, axes) -> None:
    """One legend holding every labelled line of ``axes`` (panels may not all show every method)."""
    seen = {}
    for ax in axes:
        for handle, label in zip(*ax.get_legend_handles_labels()):
            seen.setdefault(label, handle)
    target.legend(list(seen.values()), list(seen), fontsize=7, loc="upper right")


def _couplings(plt, summary: list[dict], path: Path) -> str | None:
    if not summary:
        return None
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(10, 3.6))
    steps = [1, 2, 4, 8]
    for i, s in enumerate(summary):
        name = f"{s['label'].split()[0]} + {s['coupling']}"
        means = [s[f"w2_euler{k}"]["mean"] for k in steps]
        sds = [s[f"w2_euler{k}"]["sd"] or 0.0 for k in steps]
        line = ax.errorbar(steps, means, yerr=sds, marker="o", capsize=3, label=name)
        if s["w2"]["mean"] is not None:
            ax.axhline(s["w2"]["mean"], color=line[0].get_color(), ls=":", lw=0.8)
        ax2.bar(i, s["straightness"]["mean"] or 0.0, yerr=s["straightness"]["sd"] or 0.0, capsize=3,
                color=line[0].get_color())
    ax.set_xscale("log", base=2)
    ax.set_xticks(steps, [str(k) for k in steps])
    ax.set_xlabel("Euler steps (dotted: dopri5)")
    ax.set_ylabel("W2 to held-out target")
    ax.legend(fontsize=7)
    ax2.set_xticks(range(len(summary)), [f"{s['label'].split()[0]}\n{s['coupling']}" for s in summary], fontsize=7)
    ax2.set_ylabel("straightness (0 = straight paths)")
    return _save(fig, path)


def _limited(plt, summary: list[dict], path: Path) -> str | None:
    shifts = list(dict.fromkeys(s["shift"] for s in summary))
    if not shifts:
        return None
    fig, axes = plt.subplots(2, len(shifts), figsize=(4.5 * len(shifts), 6.4), squeeze=False)
    for j, shift in enumerate(shifts):
        for label in dict.fromkeys(s["label"] for s in summary):
            rows = [s for s in summary if s["shift"] == shift and s["label"] == label]
            sizes = [r["size"] for r in rows]
            for i, metric in enumerate(("mode_coverage", "nn_distance_ratio")):
                ax = axes[i][j]
                ax.errorbar(range(len(rows)), [r[metric]["mean"] for r in rows], yerr=[r[metric]["sd"] or 0.0 for r in rows],
                            marker="o", capsize=3, label=label)
                ax.set_xticks(range(len(rows)), sizes)
                ax.set_ylabel({"mode_coverage": "mode coverage", "nn_distance_ratio": "NN distance ratio (1 = no memorisation)"}[metric], fontsize=8)
        axes[0][j].set_title(shift, fontsize=10)
        axes[0][j].set_ylim(-0.05, 1.05)
        axes[1][j].set_xlabel("target training set size")
        axes[1][j].axhline(1.0, color="k", ls="--", lw=0.8)
        axes[1][j].set_yscale("log")  # memorisation (<< 1) and a poor fit (>> 1) both show
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
        made.append(_curves(plt, ex.get("stability", {}).get("curves", []), "shift", "W2 (held-out, 50 Euler steps)",
                            folder / "stability_curves.png", floor=True))
        made.append(_curves(plt, ex.get("digits", {}).get("curves", []), "scenario", "FD (classifier features)",
                            folder / "digits_curves.png", floor=False))
        made.append(_couplings(plt, ex.get("couplings", {}).get("summary", []), folder / "couplings.png"))
        made.append(_limited(plt, ex.get("limited_data", {}).get("summary", []), folder / "limited_data.png"))
        speed = ex.get("speed", {})
        made.append(_ot_cost(plt, speed.get("ot_per_batch", []), folder / "ot_cost.png"))
    finally:
        plt.close("all")
    return [m for m in made if m], None
