"""`salience serve --tcp`: several editors on one host and one model, taking turns fairly."""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path

import pytest
from conftest import Session, settings_for, start_params
from lsprotocol import types
from pytest_lsp import make_test_lsp_client
from test_transports import connect, free_port

SHORT = "The vault code is 7733. Repeat the vault code:"
LONG = SHORT + " " + SHORT * 20  # ~1,000 tokens: minutes of 1,024-step IG on the tiny model
ENDLESS = {
    "method": "integrated_gradients",
    "progressive": False,
    "methodParams": {"integrated_gradients": {"steps": 1024, "memory_budget_mb": 16}},
}


@pytest.fixture
async def host():
    port = free_port()
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "salience", "serve", "--tcp", f"127.0.0.1:{port}", stderr=asyncio.subprocess.DEVNULL
    )
    _, writer = await connect(port)  # listening
    writer.close()
    yield port
    process.terminate()
    await process.wait()


async def editor(port: int, root: Path, options: dict) -> Session:
    """A client connected to the host over TCP, initialised with `options` as its user settings."""
    client = make_test_lsp_client()
    await client.start_tcp("127.0.0.1", port)
    root.mkdir(parents=True, exist_ok=True)
    session = Session(client, "visual-studio-code", root)
    client.set_configuration({"salience": options})
    started = await client.initialize_session(start_params("visual-studio-code", options, root))
    session.encoding = str(started.capabilities.position_encoding or "utf-16")
    return session


async def progress_token(session: Session) -> str:

    def running() -> list[str]:
        reports = session.client.progress_reports.items()
        return [t for t, r in reports if r and not isinstance(r[-1], types.WorkDoneProgressEnd)]

    await session.until(running)
    return running()[0]


async def test_a_slow_run_does_not_starve_other_editors(host, tiny_model_dir, tmp_path, margin):
    slow = await editor(host, tmp_path / "a", settings_for(tiny_model_dir, debounceMs=0, **ENDLESS))
    slow_uri = slow.open("long.prompt", LONG)
    await progress_token(slow)  # the slow run holds the model
    quick = [
        await editor(host, tmp_path / name, settings_for(tiny_model_dir, debounceMs=0, method="saliency"))
        for name in ("b", "c")
    ]
    start = time.perf_counter()
    uris = [session.open("short.prompt", SHORT) for session in quick]
    results = [await session.result_for(uri) for session, uri in zip(quick, uris)]
    waited = time.perf_counter() - start
    assert all(r["method"] == "saliency" and r["model"] == tiny_model_dir.name for r in results)
    margin("two quick editors' results beside a slow run (s)", waited, below=20)  # not minutes: it gave way
    assert not any(p["ranges"] for p in slow.scores if p["uri"] == slow_uri)  # and it is still running

    # Per-client cancellation: the slow editor cancels its own run; the others are untouched.
    token = await progress_token(slow)
    slow.client.window_work_done_progress_cancel(types.WorkDoneProgressCancelParams(token))
    await slow.until(lambda: isinstance(slow.client.progress_reports[token][-1], types.WorkDoneProgressEnd))
    assert slow.client.progress_reports[token][-1].message == "cancelled"
    edited = quick[0].edit(uris[0], types.Position(0, 0), types.Position(0, 0), "Now. ", "Now. " + SHORT)
    assert (await quick[0].result_for(uris[0], edited))["ranges"]

    # An editor that exits, and one whose connection drops, leave the host serving the others and new ones.
    await quick[1].client.shutdown_session()
    slow.client.protocol.writer.close()
    late = await editor(host, tmp_path / "d", settings_for(tiny_model_dir, debounceMs=0, method="saliency"))
    assert (await late.result_for(late.open("late.prompt", SHORT)))["ranges"]
    for session in (quick[0], late):
        await session.client.shutdown_session()
    for session in (slow, *quick, late):
        await asyncio.wait_for(session.client.stop(), 10)
