"""A run's progress in the editor: shown only once it has run a while, reports throttled."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterator

from salience.attribution import Progress
from salience.server.open_documents import Job, Output

PROGRESS_DELAY_S = 0.3
"""A run shorter than this shows no progress at all."""
REPORT_INTERVAL_S = 0.1


@contextlib.contextmanager
def progress_shown(output: Output, job: Job) -> Iterator[None]:
    """Show progress for `job` once it has run PROGRESS_DELAY_S; end it when the block exits."""
    timer = asyncio.get_running_loop().call_later(PROGRESS_DELAY_S, _begin, output, job)
    try:
        yield
    finally:
        timer.cancel()
        if job.progress_shown:
            output.end_progress(job)


def progress_hook(output: Output, job: Job) -> Progress:
    """A progress callback the worker thread can call; reports land on the event loop."""
    loop = asyncio.get_running_loop()

    def progress(fraction: float, message: str = "") -> None:
        loop.call_soon_threadsafe(report, output, job, fraction, message)

    return progress


def report(output: Output, job: Job, fraction: float, message: str) -> None:
    """Pass a report on, at most every REPORT_INTERVAL_S, once the progress is shown."""
    now = time.monotonic()
    job.fraction = fraction
    if job.progress_shown and now - job.last_report >= REPORT_INTERVAL_S:
        job.last_report = now
        output.report_progress(job, fraction, message)


def _begin(output: Output, job: Job) -> None:
    if not job.cancel.is_set():
        job.progress_shown = True
        output.begin_progress(job)
