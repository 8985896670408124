"""One background job per browser session, the device badge, and friendly errors.

The job lives in a session-scoped ``cache_resource``: Streamlit drops it when the tab closes and
``on_release`` stops the thread and frees the model (and GPU memory). Pages never train in the
script thread; they start a :class:`gft.app.jobs.TrainingJob` here and read its views.
"""

from __future__ import annotations

import threading
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Iterator

import streamlit as st
import torch

from gft.app.jobs import TrainingJob
from gft.core.device import describe_device, resolve_device


@dataclass
class JobSlot:
    """The session's single job and the page (``owner``) that started it, plus small page memos."""

    job: TrainingJob | None = None
    owner: str | None = None
    params: dict = field(default_factory=dict)  # the settings the job was started with
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def replace(self, owner: str, job: TrainingJob, params: dict) -> None:
        """Stop any previous job, install ``job`` and start it."""
        with self._lock:
            old = self.job
            self.job, self.owner, self.params = job, owner, dict(params)
        if old is not None:
            old.close()
        job.start()

    def for_page(self, owner: str) -> TrainingJob | None:
        return self.job if self.owner == owner else None

    def clear(self) -> None:
        with self._lock:
            old, self.job, self.owner, self.params = self.job, None, None, {}
        if old is not None:
            old.close()


def _release(slot: JobSlot) -> None:
    slot.clear()


@st.cache_resource(scope="session", on_release=_release, show_spinner=False)
def job_slot() -> JobSlot:
    """This browser session's job slot."""
    return JobSlot()


@st.cache_resource(show_spinner=False)
def app_device() -> torch.device:
    """The device every page trains on: the GPU when there is one."""
    return resolve_device("auto")


def device_label() -> str:
    return describe_device(app_device())


@contextmanager
def user_errors(what: str) -> Iterator[None]:
    """Show bad input and failed runs as a message on the page, never as a traceback."""
    try:
        yield
    except (ValueError, RuntimeError, OSError) as exc:
        st.error(f"{what}: {exc}")

