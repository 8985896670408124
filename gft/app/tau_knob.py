"""Manual annealing on the fine-tune page: a τ knob that the running job follows from its next step,
and the record of what the user did, as a replayable piecewise schedule."""

from __future__ import annotations

import streamlit as st

from gft.app.jobs import TrainingJob
from gft.core.manual_schedule import ManualSchedule

TAU_STOPS = (0.0, 0.1, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0)  # the knob's positions: λ = τ/(1+τ) spreads evenly-ish


def _describe(knob: ManualSchedule) -> str:
    return " → ".join(f"τ {tau:g} from step {step}" for step, tau in knob.changes())


@st.fragment
def tau_knob(prefix: str, job: TrainingJob, run_name: str, knob: ManualSchedule) -> None:
    """The knob (a fragment: moving it reruns this block only, once, on release) and the record so far."""
    view = job.view()

    def moved() -> None:
        knob.set_tau(float(st.session_state[f"{prefix}tau_now"]), job.view().run(run_name).step)

    current = knob.tau(view.run(run_name).step)
    value = min(TAU_STOPS, key=lambda s: abs(s - current))
    st.select_slider("τ now (the next steps train at this temperature)", TAU_STOPS, value=value, key=f"{prefix}tau_now",
                     on_change=moved, disabled=view.finished, format_func=lambda t: f"{t:g} (λ {t / (1 + t):.2f})")
    st.caption("Your schedule so far: " + _describe(knob))


def recorded_schedule(prefix: str, knob: ManualSchedule) -> None:
    """What the user did, as a spec to replay (page or command line) and a download."""
    spec = knob.spec()
    st.markdown("**Your annealing, recorded.** Replay it: pick the *piecewise* family with final fraction 0 and paste it, "
                "or run `python -m gft finetune ... --schedule SPEC --final-fraction 0`.")
    st.code(spec, language=None)
    st.download_button("Your schedule (.txt)", spec + "\n", file_name="gft_manual_schedule.txt", mime="text/plain",
                       icon=":material/download:", on_click="ignore", key=f"{prefix}manual_download")
