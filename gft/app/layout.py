"""One screen per idea: the page header and the two blocks that must fit a 1440 x 900 screen together.

Every page opens with :func:`page_header` (title and a two-line intro), then draws its key controls in
:func:`key_controls` and its main figure in :func:`main_figure`. Advanced settings and secondary figures
go below, in expanders or tabs. The keys become CSS classes (``st-key-...``) that the browser test
measures: at 1440 x 900 all three are on the first screen, without scrolling.
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

INTRO_KEY, CONTROLS_KEY, FIGURE_KEY = "page_intro", "key_controls", "main_figure"
CSS = Path(__file__).resolve().parents[2] / "assets" / "app.css"
FIGURE_HEIGHT = 560  # px: the main figure's height that leaves room for a header and a row of controls at 900 px


# plotly.js rejects the promise of an animation that Pause interrupts, with no reason, and its own Play/Pause
# buttons never catch it: the browser logged "Uncaught (in promise) undefined" on every Pause of a playing
# animation. Only reason-less rejections are silenced; any real error still reaches the console.
QUIET_PAUSE = ("<script>if (!window.__gftQuietPause) { window.__gftQuietPause = true; window.addEventListener("
               "'unhandledrejection', (e) => { if (e.reason === undefined) e.preventDefault(); }); }</script>")


def compact_frame() -> None:
    """Less padding above the title and smaller headings (a style-only ``st.html`` takes no space), and the
    quiet Pause of :data:`QUIET_PAUSE` (in the sidebar, where its empty block costs no figure room)."""
    if CSS.is_file():
        st.html(CSS)
    st.sidebar.html(QUIET_PAUSE, unsafe_allow_javascript=True)


def page_header(title: str, intro: str) -> None:
    """The page title and its intro: at most two lines at 1440 px, what the page shows and why."""
    with st.container(key=INTRO_KEY):
        st.title(title)
        st.caption(intro)


def key_controls():
    """The container of the controls a user needs first (what to train, Start/Pause): on the first screen."""
    return st.container(key=CONTROLS_KEY)


def main_figure():
    """The container of the page's main figure: on the first screen, beside or under the key controls."""
    return st.container(key=FIGURE_KEY)
