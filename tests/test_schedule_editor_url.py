"""The schedule editor reads its URL parameters and says so when it replaces a bad one with a default."""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

SCRIPT = """
import streamlit as st
from gft.app.schedule_editor import schedule_editor
st.session_state["spec"] = schedule_editor("t_", total_steps=100, preview=False)
"""


def run_editor(params: dict) -> AppTest:
    at = AppTest.from_string(SCRIPT, default_timeout=60)
    for key, value in params.items():
        at.query_params[key] = value
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def warnings(at: AppTest) -> list[str]:
    return [w.value for w in at.warning]


def test_valid_curve_in_the_url_is_used_without_a_warning():
    at = run_editor({"t_fam": "piecewise", "t_bp": "0/6,0.5/1,1/0"})
    assert warnings(at) == []
    assert at.session_state["spec"].startswith("piecewise:0/6,0.5/1,1/0")


@pytest.mark.parametrize("bad", ["0/6,oops,1/0", "0/6,0.5/nan,1/0", "0-6,1-0"])
def test_malformed_curve_in_the_url_warns_and_uses_the_default(bad):
    at = run_editor({"t_fam": "piecewise", "t_bp": bad})
    (message,) = warnings(at)
    assert f"t_bp={bad}" in message and "0/10,0.5/2,1/0" in message and "\n" not in message
    assert at.session_state["spec"].startswith("piecewise:0/10,0.5/2,1/0")
    assert at.query_params["t_bp"] == "0/10,0.5/2,1/0"  # the link now says what is used
    at.run()
    assert warnings(at) == []  # said once, on the run that read the link


def test_bad_bound_parameters_warn_and_valid_ones_do_not():
    at = run_editor({"t_fam": "stages", "t_taumax": "8", "t_ratio": "0.4", "t_K": "3", "t_final": "0.3"})
    assert warnings(at) == []
    assert at.session_state["spec"].startswith("stages:8,0.4,3")

    at = run_editor({"t_fam": "nope", "t_K": "2.5", "t_taumax": "abc"})
    found = warnings(at)
    assert len(found) == 3, found
    assert any("t_fam=nope" in w and "stages" in w for w in found)
    assert any("t_K=2.5" in w and "`2`" in w for w in found)
    assert any("t_taumax=abc" in w and "`10.0`" in w for w in found)
