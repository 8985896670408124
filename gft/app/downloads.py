"""What the download buttons hand out that is not a figure: run histories and image metrics as CSV."""

from __future__ import annotations

import csv
import io
from typing import Mapping, Sequence

HISTORY_COLUMNS = ("step", "tau", "lambda", "loss")  # then each measured column a history holds (w2, fd, ...)
METRIC_COLUMNS = ("fd", "fd_null_mean", "fd_null_sd", "target_fraction", "class_entropy", "diversity", "diversity_real", "nn_distance_ratio", "nfe", "n_samples", "n_train")


def _csv(rows: Sequence[Sequence]) -> str:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows(rows)
    return buf.getvalue()


def history_columns(*histories: Sequence[dict]) -> list[str]:
    """The fixed columns, then every measured key the rows hold, in order of first appearance."""
    columns = list(HISTORY_COLUMNS)
    for history in histories:
        for row in history:
            columns += [k for k in row if k not in columns]
    return columns


def _history_rows(history: Sequence[dict], extra: Mapping[str, object], columns: Sequence[str]) -> list[list]:
    return [[*extra.values(), *("" if row.get(c) is None else row[c] for c in columns)] for row in history]


def history_csv(history: Sequence[dict], extra_columns: Mapping[str, object] | None = None) -> str:
    """The run history as CSV (blank cells where a row has no measurement); ``extra_columns`` repeat per row."""
    extra = dict(extra_columns or {})
    columns = history_columns(history)
    return _csv([[*extra, *columns], *_history_rows(history, extra, columns)])


def histories_csv(histories: Mapping[str, Sequence[dict]], column: str = "run") -> str:
    """Several runs' histories in one CSV under one header, each row naming its run in ``column``."""
    columns = history_columns(*histories.values())
    rows = [[column, *columns]]
    for name, history in histories.items():
        rows += _history_rows(history, {column: name}, columns)
    return _csv(rows)


def _metric(m: dict, column: str):
    """A metric's cell; ``NAME_null_mean`` / ``NAME_null_sd`` read the ``NAME_null`` band."""
    for part in ("mean", "sd"):
        if column.endswith(f"_null_{part}"):
            return (m.get(column[: -len(part) - 1]) or {}).get(part, "")
    return m.get(column, "")


def metrics_csv(metrics: Mapping[str, dict], extra_columns: Mapping[str, object] | None = None) -> str:
    """One row per run: the scalar metrics, FD at 1/2/4/8 Euler steps and the class fractions."""
    extra = dict(extra_columns or {})
    steps = sorted({k for m in metrics.values() for k in m.get("fd_by_steps", {})}, key=int)
    rows = [[*extra, "run", *METRIC_COLUMNS, *(f"fd_{k}_steps" for k in steps), *(f"class_{c}" for c in range(10))]]
    for name, m in metrics.items():
        rows.append([
            *extra.values(), name, *(_metric(m, c) for c in METRIC_COLUMNS),
            *(m.get("fd_by_steps", {}).get(k, "") for k in steps),
            *(m.get("class_fractions", {}).get(str(c), "") for c in range(10)),
        ])  # fmt: skip
    return _csv(rows)
