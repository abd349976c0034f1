"""Faults inside a run, seen by the scheduler without LSP: a broken method, memory running out, the server stopping."""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass, field

import pytest
import torch

from salience.attribution import methods as registry
from salience.attribution.methods.saliency import Saliency
from salience.server.documents import Job
from salience.server.layers import heatmap
from salience.server.scheduler import ROWS_MESSAGE, Scheduler
from salience.server.settings import Settings

TEXT = "The vault code is 7733. Repeat the vault code:"


@dataclass
class Recorder:
    """The scheduler's Output: what a client would have been sent."""

    scheduler: Scheduler | None = None
    shown: list[tuple[str, int | None, str | None, str | None]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    progress: list[Job] = field(default_factory=list)
    messages: list[str] = field(default_factory=list)

    def published(self, uri: str, new_result: bool) -> None:
        view = self.scheduler.view(uri)
        method = view.result.method if view and view.result else None
        self.shown.append((uri, view.computed_version if method else None, method, view.error))

    def begin_progress(self, job: Job) -> None:
        self.progress.append(job)

    def report_progress(self, job: Job, fraction: float, message: str) -> None:
        self.messages.append(message)

    def end_progress(self, job: Job) -> None: ...

    def show_error(self, message: str) -> None:
        self.errors.append(message)

    def notify(self, message: str) -> None: ...


class Broken(Saliency):
    name = "broken"

    def scores(self, inputs, params):
        raise ZeroDivisionError("a bug in a method")


class Hungry(Saliency):
    name = "hungry"

    def scores(self, inputs, params):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")


class Endless(Saliency):
    name = "endless"
    started = threading.Event()

    def scores(self, inputs, params):
        type(self).started.set()
        while not inputs.hooks.cancelled():  # a long run that checks cancellation between its batches
            threading.Event().wait(0.01)
        from salience.attribution.errors import Cancelled

        raise Cancelled("cancelled")


@pytest.fixture
def scheduler(tiny_model_dir, monkeypatch):
    for cls in (Broken, Hungry, Endless):
        monkeypatch.setitem(registry._REGISTRY, cls.name, cls)
    output = Recorder()
    scheduler = Scheduler(output, Settings(model=str(tiny_model_dir), debounce_ms=0))
    output.scheduler = scheduler
    yield scheduler
    scheduler.shutdown()


async def settled(scheduler: Scheduler, uri: str) -> None:
    for _ in range(400):
        doc = scheduler.documents[uri]
        if doc.job is None and doc.debounce is None:
            return
        await asyncio.sleep(0.02)
    raise AssertionError("the run did not end")


async def test_an_exception_inside_a_method_is_shown_and_the_next_run_works(scheduler):
    out: Recorder = scheduler.output
    scheduler.open("file:///broken.prompt", f"---\nmethod: broken\n---\n{TEXT}", 1)
    await settled(scheduler, "file:///broken.prompt")
    assert out.errors == ["salience: internal error: ZeroDivisionError: a bug in a method"]
    assert out.shown[-1][3].startswith("internal error: ZeroDivisionError")
    scheduler.set_method("file:///broken.prompt", "saliency")
    await settled(scheduler, "file:///broken.prompt")
    assert out.shown[-1] == ("file:///broken.prompt", 1, "saliency", None)


async def test_out_of_memory_falls_back_to_a_cheaper_method_with_a_warning(scheduler):
    scheduler.open("file:///hungry.prompt", f"---\nmethod: hungry\n---\n{TEXT}", 1)
    await settled(scheduler, "file:///hungry.prompt")
    view = scheduler.view("file:///hungry.prompt")
    assert view.result.method == "saliency" and not scheduler.output.errors
    warnings = [d.message for d in heatmap.diagnostics(view) if d.severity == 2]
    assert any("hungry ran out of memory" in w and "showing saliency" in w for w in warnings)


async def test_stopping_the_server_cancels_the_run_in_progress(scheduler):
    Endless.started.clear()
    scheduler.open("file:///endless.prompt", f"---\nmethod: endless\n---\n{TEXT}", 1)
    await asyncio.to_thread(Endless.started.wait, 8)  # the worker thread says it has started
    job = scheduler.documents["file:///endless.prompt"].job
    assert Endless.started.is_set() and job is not None
    scheduler.shutdown()
    assert job.cancel.is_set()
    await asyncio.get_running_loop().run_in_executor(None, scheduler.worker.executor.shutdown, True)
    assert not any(method for _, _, method, _ in scheduler.output.shown)


async def test_a_two_stage_runs_progress_says_what_is_left_once_the_heatmap_is_shown(scheduler, monkeypatch):
    from salience.server import work_done

    monkeypatch.setattr(work_done, "PROGRESS_DELAY_S", 0.0)  # the tiny model is quick: show progress at once
    out: Recorder = scheduler.output
    scheduler.open("file:///rows.prompt", TEXT, 1)  # the default method: the heatmap first, then the rows
    await settled(scheduler, "file:///rows.prompt")
    assert out.progress and ROWS_MESSAGE in out.messages
    assert scheduler.view("file:///rows.prompt").result.matrix  # the rows did follow
