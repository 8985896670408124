"""The run history of each browser session, the device badge, and friendly errors.

The history (:class:`gft.app.history.RunHistory`) lives in a session-scoped ``cache_resource``:
Streamlit drops it when the tab closes and ``on_release`` stops every thread and frees the models (and
GPU memory). Pages never train in the script thread; they start a :class:`gft.app.jobs.TrainingJob`
here and read its views.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import streamlit as st
import torch

from gft.app.defaults import PageDefaults, defaults_for
from gft.app.history import RunHistory
from gft.core.device import describe_device, resolve_device


def _release(history: RunHistory) -> None:
    history.clear()


@st.cache_resource(scope="session", on_release=_release, show_spinner=False)
def job_slot() -> RunHistory:
    """This browser session's runs (freed, threads stopped, when the tab closes)."""
    return RunHistory()


@st.cache_resource(show_spinner=False)
def app_device() -> torch.device:
    """The device every page trains on: the GPU when there is one."""
    return resolve_device("auto")


def device_label() -> str:
    return describe_device(app_device())


def page_defaults() -> PageDefaults:
    """Starting values of the run widgets for this machine's device (more on a GPU)."""
    return defaults_for(str(app_device()))


@contextmanager
def user_errors(what: str) -> Iterator[None]:
    """Show bad input and failed runs as a message on the page, never as a traceback."""
    try:
        yield
    except (ValueError, RuntimeError, OSError) as exc:
        st.error(f"{what}: {exc}")

