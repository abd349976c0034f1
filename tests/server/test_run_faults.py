"""Faults inside a run, seen by the server's features without LSP: a broken method, memory running out, the
server stopping."""

from __future__ import annotations

import asyncio
import threading

import pytest
import torch
from recording import Recorder, Server, settled

from salience.attribution import methods as registry
from salience.attribution.methods.saliency import Saliency
from salience.server.layers import heatmap
from salience.server.runs import ROWS_MESSAGE

TEXT = "The vault code is 7733. Repeat the vault code:"


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
def server(tiny_model_dir, monkeypatch):
    for cls in (Broken, Hungry, Endless):
        monkeypatch.setitem(registry._REGISTRY, cls.name, cls)
    server = Server(tiny_model_dir)
    yield server
    server.features.shutdown()


async def test_an_exception_inside_a_method_is_shown_and_the_next_run_works(server):
    out: Recorder = server.output
    server.open("file:///broken.prompt", f"---\nmethod: broken\n---\n{TEXT}", 1)
    await settled(server, "file:///broken.prompt")
    assert out.errors == ["salience: internal error: ZeroDivisionError: a bug in a method"]
    assert out.shown[-1][3].startswith("internal error: ZeroDivisionError")
    server.features.set_method("file:///broken.prompt", "saliency")
    await settled(server, "file:///broken.prompt")
    assert out.shown[-1] == ("file:///broken.prompt", 1, "saliency", None)


async def test_out_of_memory_falls_back_to_a_cheaper_method_with_a_warning(server):
    server.open("file:///hungry.prompt", f"---\nmethod: hungry\n---\n{TEXT}", 1)
    await settled(server, "file:///hungry.prompt")
    view = server.features.view("file:///hungry.prompt")
    assert view.result.method == "saliency" and not server.output.errors
    warnings = [d.message for d in heatmap.diagnostics(view) if d.severity == 2]
    assert any("hungry ran out of memory" in w and "showing saliency" in w for w in warnings)


async def test_stopping_the_server_cancels_the_run_in_progress(server):
    Endless.started.clear()
    server.open("file:///endless.prompt", f"---\nmethod: endless\n---\n{TEXT}", 1)
    await asyncio.to_thread(Endless.started.wait, 8)  # the worker thread says it has started
    job = server.features.documents["file:///endless.prompt"].job
    assert Endless.started.is_set() and job is not None
    server.features.shutdown()
    assert job.cancel.is_set()
    await asyncio.get_running_loop().run_in_executor(None, server.features.worker.executor.shutdown, True)
    assert not any(method for _, _, method, _ in server.output.shown)


async def test_a_two_stage_runs_progress_says_what_is_left_once_the_heatmap_is_shown(server, monkeypatch):
    from salience.server import work_done

    monkeypatch.setattr(work_done, "PROGRESS_DELAY_S", 0.0)  # the tiny model is quick: show progress at once
    out: Recorder = server.output
    server.open("file:///rows.prompt", TEXT, 1)  # the default method: the heatmap first, then the rows
    await settled(server, "file:///rows.prompt")
    assert out.progress and ROWS_MESSAGE in out.messages
    assert server.features.view("file:///rows.prompt").result.matrix  # the rows did follow
