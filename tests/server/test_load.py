"""Load: 20 documents, 1,000 edits in 10 s and hovers meanwhile, against the real server on the tiny model."""

from __future__ import annotations

import asyncio
import gc
import random
import re
import time
from pathlib import Path

import pytest_lsp
from conftest import SERVER, Session, settings_for, start_params
from lsp_decode import text_of_range
from lsprotocol import types
from pytest_lsp import ClientServerConfig, LanguageClient

DOCUMENTS, EDITS, SECONDS, DEBOUNCE_S = 20, 1000, 10.0, 0.8
"""Each document is edited every 200 ms (20 documents, an edit every 10 ms). The debounce is four times that,
so only a server stall over 600 ms can let it start a run for a version typed over: at 0.4 s (twice) a clean
clone's `make test`, two test workers on 2 cores, once did (versions 36 and 51 of one document)."""
PIECES = ["a", "door ", "7733", "é", "😀", "日本", "\n", "\r\n", "e\u0301", " "]


@pytest_lsp.fixture(config=ClientServerConfig(server_command=SERVER))
async def loaded(lsp_client: LanguageClient, tiny_model_dir, tmp_path):
    lsp_client.session = Session(lsp_client, "visual-studio-code", tmp_path)
    options = settings_for(tiny_model_dir, debounceMs=int(1000 * DEBOUNCE_S), method="saliency")
    lsp_client.set_configuration({"salience": options})
    started = await lsp_client.initialize_session(start_params("visual-studio-code", options, tmp_path))
    lsp_client.session.encoding = str(started.capabilities.position_encoding or "utf-16")
    yield
    await lsp_client.shutdown_session()


def position(text: str, offset: int, encoding: str) -> types.Position:
    """The LSP position of code-point `offset` (lines split at \\r\\n, \\r, \\n only)."""
    line_starts = [0] + [m.end() for m in re.finditer(r"\r\n|\r(?!\n)|\n", text)]
    line = max(i for i, start in enumerate(line_starts) if start <= offset)
    prefix = text[line_starts[line] : offset]
    units = {"utf-8": len(prefix.encode("utf-8")), "utf-32": len(prefix)}.get(
        encoding, len(prefix.encode("utf-16-le")) // 2
    )
    return types.Position(line, units)


def random_edit(text: str, rng: random.Random) -> tuple[int, int, str]:
    """Insert, delete or replace at a code-point offset (never inside a \\r\\n pair)."""
    cuts = [i for i in range(len(text) + 1) if not (0 < i < len(text) and text[i - 1] == "\r" and text[i] == "\n")]
    start = rng.choice(cuts)
    end = min((c for c in cuts if c >= start + rng.choice([0, 0, 1, 3])), default=start)
    return start, end, rng.choice(PIECES + [""]) if end > start else rng.choice(PIECES)


def rss_kb(pid: int) -> tuple[int, int]:
    """(current RSS, peak RSS) of a process in KiB."""
    status = Path(f"/proc/{pid}/status").read_text()
    return tuple(int(re.search(rf"{key}:\s+(\d+)", status).group(1)) for key in ("VmRSS", "VmHWM"))


async def test_a_thousand_edits_in_ten_seconds(loaded, tmp_path, capsys, margin):
    session: Session = loaded.session
    rng = random.Random(11)
    texts = {}
    for i in range(DOCUMENTS):
        text = f"Document {i}: the door code is {1000 + i}.\nRepeat the door code of document {i}:"
        texts[session.open(f"doc{i}.prompt", text)] = text
    for uri in texts:
        await session.result_for(uri)
    pid = loaded._server.pid
    rss_before, _ = rss_kb(pid)

    hover_times: list[float] = []

    async def hover(uri: str) -> None:
        start = time.perf_counter()
        await loaded.text_document_hover_async(
            types.HoverParams(types.TextDocumentIdentifier(uri), types.Position(0, rng.randrange(20)))
        )
        hover_times.append(time.perf_counter() - start)

    gc.collect()
    gc.disable()  # the Python test client's own pauses are not the server's latency
    hovers, begin, sent_at = [], time.perf_counter(), {}
    uris = list(texts)
    for n in range(EDITS):
        uri = uris[n % DOCUMENTS]
        start, end, new = random_edit(texts[uri], rng)
        after = texts[uri][:start] + new + texts[uri][end:]
        encoding = session.encoding
        version = session.edit(
            uri, position(texts[uri], start, encoding), position(texts[uri], end, encoding), new, after
        )
        sent_at[(uri, version)] = time.perf_counter()
        texts[uri] = after
        if n % 5 == 0:
            hovers.append(asyncio.ensure_future(hover(rng.choice(uris))))
        await asyncio.sleep(max(0.0, begin + (n + 1) * SECONDS / EDITS - time.perf_counter()))
    sent_in = time.perf_counter() - begin
    await asyncio.gather(*hovers)
    gc.enable()
    for uri in uris:
        await session.result_for(uri, session.versions[uri])
    rss_after, peak = rss_kb(pid)

    for uri in uris:
        mine = [p for p in session.scores if p["uri"] == uri]
        assert [p["version"] for p in mine] == sorted(p["version"] for p in mine)  # never an older version again
        computed = {p["computedVersion"] for p in mine if p["ranges"] and p["computedVersion"] > 1}
        assert session.versions[uri] in computed
        # Only the latest version is attributed: an earlier one only where typing paused for the debounce.
        paused = {v for v in computed if sent_at.get((uri, v + 1), 1e9) - sent_at[(uri, v)] >= 0.75 * DEBOUNCE_S}
        assert not computed - paused, computed
        for payload in mine:
            shown = session.texts[(uri, payload["version"])]
            covered = [text_of_range(shown, r, session.encoding) for r in payload["ranges"]]
            source = session.texts[(uri, payload["computedVersion"])] if payload["computedVersion"] else ""
            if payload["computedVersion"] == payload["version"]:  # fresh: every visible character, in order
                assert re.sub(r"\s", "", "".join(covered)) == re.sub(r"\s", "", shown)
            else:  # shifted through edits: only characters the computed version had
                assert not set("".join(covered)) - set(source)
    hover_times.sort()
    p99 = hover_times[int(0.99 * (len(hover_times) - 1))]
    with capsys.disabled():
        print(
            f"\nload: {EDITS} edits to {DOCUMENTS} documents sent in {sent_in:.1f} s; {len(hover_times)} hovers, "
            f"p50 {1000 * hover_times[len(hover_times) // 2]:.1f} ms, p99 {1000 * p99:.1f} ms; server RSS "
            f"{rss_before // 1024} MiB before, {rss_after // 1024} MiB after, peak {peak // 1024} MiB"
        )
    margin(f"load: {EDITS} edits sent (s)", sent_in, below=SECONDS * 1.5)
    margin("load: hover p99 (ms)", 1000 * p99, below=50)
    margin("load: server RSS growth (MiB)", (rss_after - rss_before) / 1024, below=100)  # no growth with edits
