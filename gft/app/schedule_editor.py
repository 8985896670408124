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


def _breakpoints_table(prefix: str, default_bp: str):
    import pandas as pd

    key_init = f"{prefix}bp_init"
    if key_init not in st.session_state:
        # A shared link carries the curve as ?{prefix}bp=P0/T0,P1/T1,...; read it once per session.
        st.session_state[key_init] = st.query_params.get(f"{prefix}bp", default_bp)
    rows = []
    for item in str(st.session_state[key_init]).split(","):
        p, _, t = item.partition("/")
        try:
            rows.append({"progress": float(p), "tau": float(t)})
        except ValueError:
            rows = [{"progress": 0.0, "tau": 10.0}, {"progress": 0.5, "tau": 2.0}, {"progress": 1.0, "tau": 0.0}]
            break
    st.caption("Draw τ as a piecewise-linear curve: rows of (progress through the annealed part in [0, 1], τ).")
    table = st.data_editor(
        pd.DataFrame(rows), num_rows="dynamic", key=f"{prefix}bp_table", hide_index=True,
        column_config={
            "progress": st.column_config.NumberColumn("progress", min_value=0.0, max_value=1.0, step=0.05, required=True),
            "tau": st.column_config.NumberColumn("τ", min_value=0.0, step=0.5, required=True),
        },
    )
    pairs = [(r["progress"], r["tau"]) for r in table.to_dict("records") if r.get("progress") is not None and r.get("tau") is not None]
    pairs = [(float(p), float(t)) for p, t in pairs if np.isfinite(p) and np.isfinite(t)]
    text = ",".join(f"{p:g}/{t:g}" for p, t in pairs)
    if text and st.query_params.get(f"{prefix}bp") != text:
        st.query_params[f"{prefix}bp"] = text
    return f"piecewise:{text}"


def schedule_editor(prefix: str, total_steps: int = 1000, default: str = "stages:10,0.5,5", preview: bool = True) -> str | None:
    """Temperature-schedule widgets (bound to the URL) with a live tau/lambda preview.

    Returns the schedule spec string, or None after showing an error when the schedule is impossible.
    The final tau = 0 share is read with :func:`edited_final_fraction` (same ``prefix``).
    """
    d = _spec_defaults(default)
    fam = st.selectbox("Schedule family", FAMILIES, index=FAMILIES.index(d["fam"]), key=f"{prefix}fam", bind="query-params",
                       help="constant: one intermediate objective; the others anneal τ to 0 and then hold τ = 0 for the final fraction")
    cols = st.columns(3)
    if fam == "piecewise":
        spec = _breakpoints_table(prefix, "0/10,0.5/2,1/0")
    else:
        tau = cols[0].number_input("τ" if fam == "constant" else "τ max", min_value=0.0, value=d["taumax"], step=1.0, key=f"{prefix}taumax", bind="query-params")
        if fam == "stages":
            ratio = cols[1].number_input("ratio per stage", min_value=0.0, value=d["ratio"], step=0.1, key=f"{prefix}ratio", bind="query-params")
            k = cols[2].number_input("stages K", min_value=1, value=d["K"], step=1, key=f"{prefix}K", bind="query-params")
            spec = f"stages:{tau:g},{ratio:g},{int(k)}"
        elif fam == "exponential":
            rate = cols[1].number_input("rate", min_value=0.0, value=d["rate"], step=0.5, key=f"{prefix}rate", bind="query-params")
            spec = f"exponential:{tau:g},{rate:g}"
        else:
            spec = f"{fam}:{tau:g}"
    final = 0.2
    if fam != "constant":
        final = st.slider("final fraction at τ = 0", 0.0, 0.9, 0.2, 0.05, key=f"{prefix}final", bind="query-params",
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
