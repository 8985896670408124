"""The GFT explorer: ``streamlit run app.py``. Builds the navigation and the frame every page shares."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from gft.app.layout import compact_frame
from gft.app.run_status import runs_sidebar
from gft.app.session import app_device, device_label, page_defaults

ROOT = Path(__file__).resolve().parent
PAGES = (
    ("pages/1_start_here.py", "Start here", ":material/school:"),
    ("pages/2_pretrain.py", "Pretrain", ":material/model_training:"),
    ("pages/3_gradual_finetune.py", "Gradual fine-tune", ":material/thermostat:"),
    ("pages/4_compare_couplings.py", "Compare couplings", ":material/link:"),
    ("pages/5_compare_methods.py", "Compare methods", ":material/compare_arrows:"),
    ("pages/6_annealing_exactly.py", "Annealing, exactly", ":material/functions:"),
    ("pages/7_images.py", "Images", ":material/image:"),
    ("pages/8_chains.py", "Chains of shifts", ":material/timeline:"),
)


@st.cache_resource(show_spinner=False)
def _one_cpu_thread_per_op() -> None:
    """On CPU, run torch ops single-threaded (once per process).

    The 2D models are tiny, so intra-op threads buy nothing, while the training thread and the page
    thread already share the cores: with 2 OpenMP threads per op on a busy 2-core machine, 40 Euler
    steps of 300 points took 1.5-8 s instead of 0.1 s (measured).
    """
    import torch

    if app_device().type == "cpu":
        torch.set_num_threads(1)


_one_cpu_thread_per_op()
# A local file, not a Material icon name: for a page icon Streamlit fetches the symbol's SVG from
# fonts.gstatic.com, and the app must make no external request (it must work offline).
st.set_page_config(page_title="GFT explorer", page_icon=str(ROOT / "assets" / "icon.png"), layout="wide")
compact_frame()

# Only the pages that exist: the explorer grows page by page.
pages = [
    st.Page(path, title=title, icon=icon, default=i == 0)
    for i, (path, title, icon) in enumerate(PAGES)
    if (ROOT / path).is_file()
]
current = st.navigation(pages)

with st.sidebar:
    st.markdown(
        "**Gradual fine-tuning (GFT)** moves a pretrained flow to new data by annealing a temperature τ: "
        "it regresses onto (1 − λ)·target + λ·pretrained drift, λ = τ/(1+τ), and lowers τ to 0."
    )
    label = device_label()
    st.badge(label, icon=":material/memory:" if label.startswith("GPU") else ":material/developer_board:",
             color="green" if label.startswith("GPU") else "gray")
    st.caption(page_defaults().reason)
    runs_sidebar()

current.run()
