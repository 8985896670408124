"""Numbers that summarise several finished runs side by side: coupling tables, per-method curves over
seeds, stability numbers and their display form (the comparison pages and their downloads).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from gft.core.training import TrainResult
from gft.data import MODES, DataSpec
from gft.evaluation.metrics import mode_coverage, stability
from gft.evaluation.null_band import NullBand
from gft.evaluation.points import null_bands
from gft.evaluation.result import Evaluation

METHOD_LABELS = {"gft": "GFT", "standard": "standard fine-tuning", "scratch": "from scratch", "gft-stop": "GFT stopped at τ 0.5",
                 "gft-constant": "GFT at constant τ 1", "standard-slow": "standard, lr 3e-4 + warm-up",
                 "standard-ema": "standard + EMA", "l2sp": "L2-SP"}


# ---- run names -----------------------------------------------------------------------------
def run_name(method: str, seed: int) -> str:
    return f"{method} / seed {seed}"


def parse_run_name(name: str) -> tuple[str, int]:
    method, _, seed = name.partition(" / seed ")
    return method, int(seed)


# ---- tables --------------------------------------------------------------------------------
COUPLING_COLUMNS = (
    "coupling", "steps", "W2", "W2 null top", "path length", "straightness",
    "W2 @1", "W2 @2", "W2 @4", "W2 @8", "train s", "steps/s", "OT ms/batch",
)  # fmt: skip


def coupling_table(results: dict[str, TrainResult], evaluations: dict[str, Evaluation]) -> pd.DataFrame:
    """One row per coupling: sample quality, path geometry, few-step W2 and training cost."""
    rows = []
    for name, result in results.items():
        ev = evaluations.get(name)
        few = ev.w2_by_steps if ev is not None else {}
        nan = float("nan")
        rows.append({
            "coupling": name,
            "steps": result.steps,
            "W2": ev.w2 if ev else nan,
            "W2 null top": NullBand(**ev.w2_null).high if ev else nan,  # mean + 2 sd of target-vs-target W2
            "path length": ev.path_length if ev else nan,
            "straightness": ev.straightness if ev else nan,
            "W2 @1": few.get("1", nan),  # Euler steps
            "W2 @2": few.get("2", nan),
            "W2 @4": few.get("4", nan),
            "W2 @8": few.get("8", nan),
            "train s": result.train_seconds,
            "steps/s": result.steps_per_second,
            "OT ms/batch": 1000.0 * result.ot_seconds_per_batch,
        })  # fmt: skip
    return pd.DataFrame(rows, columns=list(COUPLING_COLUMNS))


@dataclass(frozen=True)
class MethodCurves:
    """W2 against step for one method over seeds, on the steps every seed evaluated."""

    method: str
    seeds: tuple[int, ...]
    steps: np.ndarray  # (k,)
    w2: np.ndarray  # (seeds, k)

    @property
    def mean(self) -> np.ndarray:
        return self.w2.mean(0)

    @property
    def low(self) -> np.ndarray:
        return self.w2.min(0)

    @property
    def high(self) -> np.ndarray:
        return self.w2.max(0)


def w2_curve(history) -> tuple[np.ndarray, np.ndarray]:
    """``(steps, w2)`` of the history rows that carry a W2."""
    rows = [r for r in history if r.get("w2") is not None]
    return np.array([r["step"] for r in rows], dtype=np.int64), np.array([r["w2"] for r in rows], dtype=np.float64)


def method_curves(histories: dict[str, list[dict]]) -> dict[str, MethodCurves]:
    """Group run histories named by :func:`run_name` into per-method curves over the common steps."""
    grouped: dict[str, list[tuple[int, np.ndarray, np.ndarray]]] = {}
    for name, history in histories.items():
        method, seed = parse_run_name(name)
        steps, w2 = w2_curve(history)
        grouped.setdefault(method, []).append((seed, steps, w2))
    curves = {}
    for method, runs in grouped.items():
        runs.sort(key=lambda r: r[0])
        common = runs[0][1]
        for _, steps, _ in runs[1:]:
            common = np.intersect1d(common, steps)  # a stopped run ends early; compare where all exist
        w2 = np.stack([w[np.isin(s, common)] for _, s, w in runs]) if len(common) else np.zeros((len(runs), 0))
        curves[method] = MethodCurves(method, tuple(r[0] for r in runs), common, w2)
    return curves


def w2_null(target: str, n: int, seed: int = 0) -> NullBand:
    """W2's null band at ``n`` points: where a curve of that size reads when the model is as good as the target."""
    return null_bands(DataSpec(target), n, seed)["w2"]


STABILITY_NUMBERS = ("final W2", "Spearman", "diff variance", "largest rise", "mode coverage")


def final_coverage(samples: np.ndarray | None, target: str) -> float | None:
    """Mode coverage of final samples for a mixture target (None otherwise)."""
    if samples is None or target not in MODES:
        return None
    centres, std = MODES[target]
    return mode_coverage(samples, centres, std)


def stability_table(curves: dict[str, MethodCurves], coverage: dict[str, list[float]] | None = None) -> pd.DataFrame:
    """Per method: mean and spread (std over seeds) of final W2, the stability numbers and coverage.

    Columns ``NAME`` and ``NAME std`` for each of :data:`STABILITY_NUMBERS`; a curve with fewer than three
    evaluations has no stability numbers (NaN).
    """
    rows = []
    for method, c in curves.items():
        per_seed: dict[str, list[float]] = {k: [] for k in STABILITY_NUMBERS}
        for w2 in c.w2:
            if len(w2):
                per_seed["final W2"].append(float(w2[-1]))
            if len(w2) >= 3 and np.isfinite(w2).all():
                s = stability(w2)
                per_seed["Spearman"].append(s.spearman)
                per_seed["diff variance"].append(s.diff_variance)
                per_seed["largest rise"].append(s.largest_rise)
        per_seed["mode coverage"] = [v for v in (coverage or {}).get(method, []) if v is not None]
        row: dict = {"method": METHOD_LABELS.get(method, method), "seeds": len(c.seeds)}
        for key, values in per_seed.items():
            row[key] = float(np.mean(values)) if values else float("nan")
            row[f"{key} std"] = float(np.std(values)) if values else float("nan")
        rows.append(row)
    columns = ["method", "seeds"] + [c for k in STABILITY_NUMBERS for c in (k, f"{k} std")]
    return pd.DataFrame(rows, columns=columns)


def mean_pm_std(table: pd.DataFrame, digits: int = 3) -> pd.DataFrame:
    """Display form of :func:`stability_table`: one ``mean ± std`` text column per number."""
    out = table[["method", "seeds"]].copy()
    for key in STABILITY_NUMBERS:
        out[key] = [
            "n/a" if math.isnan(m) else f"{m:.{digits}g} ± {s:.2g}" for m, s in zip(table[key], table[f"{key} std"])
        ]
    return out
