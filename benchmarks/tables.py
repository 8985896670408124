"""CSV files of the results: one row per run and one per summarised group (mean and sd as columns)."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from gft.core.checkpoints import atomic_write_bytes

_LISTS = ("curve", "readings", "class_fractions", "fd_by_steps", "values_a", "values_b", "chain")


def flatten(row: dict) -> dict:
    """Summary dicts become NAME_mean / NAME_sd / NAME_n; nested dicts NAME_KEY; curves are left out."""
    flat = {}
    for key, value in row.items():
        if key in _LISTS:
            continue
        if isinstance(value, dict) and {"mean", "sd", "n"} <= set(value):
            flat[f"{key}_mean"], flat[f"{key}_sd"], flat[f"{key}_n"] = value["mean"], value["sd"], value["n"]
        elif isinstance(value, dict):
            for k, v in value.items():
                flat[f"{key}_{k}"] = v
        elif isinstance(value, (list, tuple)):
            flat[key] = " ".join(str(v) for v in value)
        else:
            flat[key] = value
    return flat


def _write(path: Path, rows: list[dict]) -> str | None:
    if not rows:
        return None
    flat = [flatten(r) for r in rows]
    columns = list(dict.fromkeys(k for r in flat for k in r))
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(flat)
    atomic_write_bytes(path, buf.getvalue().encode())
    return path.name


def write_csvs(results: dict, out: Path) -> list[str]:
    ex = results["experiments"]
    wanted: dict[str, list[dict]] = {}
    for name in ("budget", "stress", "fewshot", "straight", "chain", "digits"):
        e = ex.get(name, {})
        wanted[f"{name}_runs.csv"] = e.get("rows", [])
        wanted[f"{name}_summary.csv"] = e.get("table", [])
    wanted["comparisons.csv"] = [{"experiment": c["experiment"], "id": c["id"], "primary": c["primary"], "question": c["question"],
                                  "a": c["a"], "b": c["b"], **c["stats"], "verdict": c["verdict"]}
                                 for c in results.get("endpoints", [])]
    speed = ex.get("speed", {})
    if speed.get("status") == "ok":
        tr = speed["training"]
        wanted["speed_training.csv"] = [{"loop": k, "steps_per_second": v, "per_round": tr["per_round"][k]}
                                        for k, v in tr["steps_per_second"].items()]
        wanted["speed_ot.csv"] = speed["ot_per_batch"]
        wanted["speed_sampling.csv"] = speed["sampling"]
    wanted["robustness.csv"] = ex.get("robustness", {}).get("checks", [])
    return [name for name, rows in wanted.items() if _write(out / name, rows)]
