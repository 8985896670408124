"""The temperature-schedule editor: a family and its parameters (bound to the URL), or a drawn
piecewise-linear curve, with a live preview of tau and lambda against the step.
"""

from __future__ import annotations

import numpy as np
import streamlit as st

from gft.app.session import user_errors
from gft.core.schedules import FAMILIES, parse_schedule
from gft.viz import training as figures


def _spec_defaults(spec: str) -> dict:
    s = parse_schedule(spec, 100)
    return {"fam": s.family, "taumax": float(s.tau_max), "ratio": float(s.ratio), "K": int(s.stages), "rate": float(s.rate)}


def _url_seed(key: str) -> str | None:
    """The URL's raw value for a bound widget on the run that seeds it from the URL; None otherwise."""
    if key in st.session_state:
        return None  # the widget already has a value this session: the URL just mirrors it
    return st.query_params.get(key)


def _seeded_as_given(raw: str, value: object) -> bool:
    if isinstance(value, (int, float)):
        try:
            return float(raw) == float(value)
        except ValueError:
            return False
    return raw == str(value)


def _warn_if_replaced(key: str, raw: str | None, value: object) -> None:
    """Say so when Streamlit dropped or rounded a bound widget's URL value (it does so silently)."""
    if raw is not None and not _seeded_as_given(raw, value):
        st.warning(f"URL parameter `{key}={raw}` is not a valid value here; using `{value}` instead.")


def _parse_breakpoints(text: str) -> list[dict]:
    """Rows of a ``P0/T0,P1/T1,...`` curve; ValueError naming the first bad item."""
    rows = []
    for item in text.split(","):
        p, sep, t = item.partition("/")
        try:
            row = {"progress": float(p), "tau": float(t)}
        except ValueError:
            row = None
        if not sep or row is None or not all(np.isfinite(v) for v in row.values()):
            raise ValueError(f"item {item!r} is not progress/tau with two finite numbers")
        rows.append(row)
    return rows


def _initial_breakpoints(prefix: str, default_bp: str) -> list[dict]:
    """The curve a shared link carries (?{prefix}bp=P0/T0,P1/T1,...), read once per session."""
    key_init, name = f"{prefix}bp_init", f"{prefix}bp"
    if key_init not in st.session_state:
        raw = st.query_params.get(name)
        try:
            st.session_state[key_init] = _parse_breakpoints(raw) if raw is not None else _parse_breakpoints(default_bp)
        except ValueError as exc:
            st.warning(f"URL parameter `{name}={raw}` is not a curve ({exc}); using the default `{default_bp}` instead.")
            st.session_state[key_init] = _parse_breakpoints(default_bp)
    return st.session_state[key_init]


def _breakpoints_table(prefix: str, default_bp: str):
    import pandas as pd

    rows = _initial_breakpoints(prefix, default_bp)
    st.caption("Draw τ as a piecewise-linear curve: rows of (progress through the annealed part in [0, 1], τ).")
    table = st.data_editor(
        pd.DataFrame(rows), num_rows="dynamic", key=f"{prefix}bp_table", hide_index=True,
        column_config={
            "progress": st.column_config.NumberColumn("progress", min_value=0.0, max_value=1.0, step=0.05, required=True),
            "tau": st.column_config.NumberColumn("τ", min_value=0.0, step=0.5, required=True),
        },
    )
    # Rows the user is still filling in (an empty cell) are left out until complete.
    pairs = [(r["progress"], r["tau"]) for r in table.to_dict("records") if r.get("progress") is not None and r.get("tau") is not None]
    pairs = [(float(p), float(t)) for p, t in pairs if np.isfinite(p) and np.isfinite(t)]
    text = ",".join(f"{p:g}/{t:g}" for p, t in pairs)
    if text and st.query_params.get(f"{prefix}bp") != text:
        st.query_params[f"{prefix}bp"] = text
    return f"piecewise:{text}"


def _bound(widget, key: str, *args, **kwargs):
    """``widget(*args, key=key, bind="query-params", **kwargs)``, warning when its URL value was replaced."""
    raw = _url_seed(key)
    value = widget(*args, key=key, bind="query-params", **kwargs)
    _warn_if_replaced(key, raw, value)
    return value


def schedule_editor(prefix: str, total_steps: int = 1000, default: str = "stages:10,0.5,5", preview: bool = True) -> str | None:
    """Temperature-schedule widgets (bound to the URL) with a live tau/lambda preview.

    Returns the schedule spec string, or None after showing an error when the schedule is impossible.
    The final tau = 0 share is read with :func:`edited_final_fraction` (same ``prefix``).
    """
    d = _spec_defaults(default)
    fam = _bound(st.selectbox, f"{prefix}fam", "Schedule family", FAMILIES, index=FAMILIES.index(d["fam"]),
                 help="constant: one intermediate objective; the others anneal τ to 0 and then hold τ = 0 for the final fraction")
    cols = st.columns(3)
    if fam == "piecewise":
        spec = _breakpoints_table(prefix, "0/10,0.5/2,1/0")
    else:
        tau = _bound(cols[0].number_input, f"{prefix}taumax", "τ" if fam == "constant" else "τ max", min_value=0.0, value=d["taumax"], step=1.0)
        if fam == "stages":
            ratio = _bound(cols[1].number_input, f"{prefix}ratio", "ratio per stage", min_value=0.0, value=d["ratio"], step=0.1)
            k = _bound(cols[2].number_input, f"{prefix}K", "stages K", min_value=1, value=d["K"], step=1)
            spec = f"stages:{tau:g},{ratio:g},{int(k)}"
        elif fam == "exponential":
            rate = _bound(cols[1].number_input, f"{prefix}rate", "rate", min_value=0.0, value=d["rate"], step=0.5)
            spec = f"exponential:{tau:g},{rate:g}"
        else:
            spec = f"{fam}:{tau:g}"
    final = 0.2
    if fam != "constant":
        final = _bound(st.slider, f"{prefix}final", "final fraction at τ = 0", 0.0, 0.9, 0.2, 0.05,
                       help="share of the steps trained at τ = 0 (plain flow matching on the target) after the annealing")
    with user_errors("Impossible schedule"):
        schedule = parse_schedule(spec, int(total_steps), final)
        if preview:
            steps, taus, lams = schedule.curve(300)
            st.plotly_chart(figures.schedule_figure(steps, taus, lams), key=f"{prefix}sched_preview")
        return schedule.spec()
    return None


def edited_final_fraction(prefix: str) -> float:
    """The share of steps held at tau = 0 after the annealing, as set in :func:`schedule_editor` (0.2 by default)."""
    if st.session_state.get(f"{prefix}fam") == "constant":
        return 0.2  # unused by a constant schedule; keeps TrainConfig's default
    return float(st.session_state.get(f"{prefix}final", 0.2))
