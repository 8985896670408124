"""The sidebar's account of this session's runs: what trains now, on which page, and what is kept."""

from __future__ import annotations

import streamlit as st

from gft.app.history import RunRecord
from gft.app.session import job_slot

PAGE_OF_OWNER = {  # the page that shows each owner's run (app.py's navigation)
    "start": ("pages/1_start_here.py", "Start here"),
    "pretrain": ("pages/2_pretrain.py", "Pretrain"),
    "finetune": ("pages/3_gradual_finetune.py", "Gradual fine-tune"),
    "compare_couplings": ("pages/4_compare_couplings.py", "Compare couplings"),
    "compare_methods": ("pages/5_compare_methods.py", "Compare methods"),
    "images": ("pages/7_images.py", "Images"),
    "chains": ("pages/8_chains.py", "Chains of shifts"),
}
POLL_S = 2.0


def page_title(owner: str) -> str:
    return PAGE_OF_OWNER.get(owner, (None, owner))[1]


def describe(record: RunRecord) -> str:
    """``#3 gft moons → 8gaussians · running 45% · Gradual fine-tune``."""
    view = record.job.view()
    return f"{record.name} · {view.state} {view.progress:.0%} · {page_title(record.owner)}"


def runs_sidebar() -> None:
    """Runs training now (with a link to their page) and how many finished runs the session keeps.

    Call inside ``with st.sidebar``; polls every :data:`POLL_S` seconds only while something trains.
    """
    history = job_slot()
    busy = bool(history.active())

    @st.fragment(run_every=POLL_S if busy else None)
    def _status() -> None:
        active = history.active()
        if not active:
            st.caption(f"No run is training. This session keeps {len(history.records())} of its last {history.keep} runs.")
            return
        st.markdown("**Training now**")
        for record in active:
            path, title = PAGE_OF_OWNER.get(record.owner, (None, record.owner))
            st.caption(describe(record))
            if path is not None:
                st.page_link(path, label=f"go to {title}", icon=":material/arrow_forward:")

    _status()
