"""Sections, `expect:` and compare mode in the real server on the tiny model, as Neovim 0.11 and as VS Code."""

from __future__ import annotations

import shutil
import subprocess

import pytest
from lsprotocol import types

pytestmark = pytest.mark.asyncio(loop_scope="module")  # the module's servers (conftest)

SECTIONED = (
    "---\nexpect:\n  sections:\n    Documents: {min_share: 0.01}\n---\n"
    "## Instructions 📝\r\nAnswer from the documents.\r\n\r\n"
    "## Documents\r\n<document>Red door: 7733.</document>\r\n<document>Blue 日本 door: 4812.</document>\r\n\r\n"
    "## Question\r\nWhat is the code for the red door?"
)


def doc_id(uri: str) -> types.TextDocumentIdentifier:
    return types.TextDocumentIdentifier(uri)


async def lenses_of(session, uri: str) -> list[types.CodeLens]:
    return await session.client.text_document_code_lens_async(types.CodeLensParams(doc_id(uri)))


async def test_section_lenses_hover_and_scores(session):
    uri = session.open("sections.prompt.md", SECTIONED)
    payload = await session.result_for(uri)
    top = [s for s in payload["sections"] if s["depth"] == 0]
    assert [s["name"] for s in top] == ["Instructions 📝", "Documents", "Question"]
    assert [s["name"] for s in payload["sections"] if s["depth"] == 1] == ["document 1", "document 2"]
    assert [s["line"] for s in top] == [5, 8, 12]  # 0-based lines, CRLF counted once
    assert 0.5 < sum(s["share"] for s in top) <= 1.0 + 1e-3  # the rest: the sink token, outside the file
    lenses = [lens for lens in await lenses_of(session, uri) if lens.command.title.startswith("§")]
    assert [lens.range.start.line for lens in lenses] == [5, 8, 12]
    assert lenses[1].command.title.startswith("§ Documents · ") and "%" in lenses[1].command.title
    hover = await session.client.text_document_hover_async(types.HoverParams(doc_id(uri), types.Position(1, 2)))
    assert "sections (share of |relevance|): Instructions 📝: " in hover.contents.value


async def test_expect_is_checked_live(session):
    missing = SECTIONED.replace("Documents: {min_share: 0.01}", "Appendix: {min_share: 0.01}")
    uri = session.open("missing.prompt.md", missing)
    await session.until(
        lambda: any("no section 'Appendix'" in d.message for d in session.client.diagnostics.get(uri, []))
    )
    error = next(d for d in session.client.diagnostics[uri] if "Appendix" in d.message)
    assert error.severity == types.DiagnosticSeverity.Error and error.range.start.line == 3
    failing = SECTIONED.replace("min_share: 0.01", "max_share: 0.0")
    uri = session.open("failing.prompt.md", failing)
    await session.result_for(uri)
    await session.until(lambda: any("expect:" in d.message for d in session.client.diagnostics.get(uri, [])))
    warning = next(d for d in session.client.diagnostics[uri] if "expect:" in d.message)
    assert warning.severity == types.DiagnosticSeverity.Warning and warning.range.start.line == 8
    assert "section 'Documents': share ≤ 0.0%" in warning.message


async def command(session, name: str, *arguments) -> None:
    await session.client.workspace_execute_command_async(types.ExecuteCommandParams(name, list(arguments)))


async def test_compare_with_pinned_saved_and_head(session):
    text = "The code for the red door is 7733. The code for the blue door is 4812. Red door code:"
    uri = session.open("compare.prompt", text)
    await session.result_for(uri)
    await command(session, "salience.pin", uri)
    edited = text.replace("blue", "green")
    start = text.index("blue")
    position = types.Position(0, start)
    version = session.edit(uri, position, types.Position(0, start + 4), "green", edited)
    await session.result_for(uri, version)
    await command(session, "salience.compare", uri, "pinned")
    compared = await session.wait_scores(lambda p: p["uri"] == uri and p["compare"] == "pinned")
    assert compared["ranges"] and all(-1 <= s <= 1 for s in compared["scores"])
    green = types.Position(0, start + 1)
    hover = await session.client.text_document_hover_async(types.HoverParams(doc_id(uri), green))
    assert "since pinned: inserted, now" in hover.contents.value
    lenses = await lenses_of(session, uri)
    assert any(lens.command.title.startswith("comparing with pinned") for lens in lenses)
    hints = await session.client.text_document_inlay_hint_async(
        types.InlayHintParams(doc_id(uri), types.Range(types.Position(0, 0), types.Position(1, 0)))
    )
    assert not hints  # the hover says was/now; score labels of the plain heatmap would mislead
    await command(session, "salience.compare", uri, "saved")  # the file on disk still says "blue"
    await session.wait_scores(lambda p: p["uri"] == uri and p["compare"] == "saved")
    hover = await session.client.text_document_hover_async(types.HoverParams(doc_id(uri), green))
    assert "since saved: inserted" in hover.contents.value
    await command(session, "salience.compare", uri, "off")
    plain = await session.wait_scores(lambda p: p["uri"] == uri and p["compare"] is None and p["ranges"])
    assert plain["method"]
    if shutil.which("git") is None:
        return
    await command(session, "salience.compare", uri, "HEAD")  # not a repository yet: a clear message
    await session.until(lambda: any("not in a git repository" in m.message for m in session.client.messages))
    git = ["git", "-C", str(session.root), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "compare.prompt"], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "v1"], check=True)
    await command(session, "salience.compare", uri, "HEAD")
    await session.wait_scores(lambda p: p["uri"] == uri and p["compare"] == "HEAD")
    hover = await session.client.text_document_hover_async(types.HoverParams(doc_id(uri), green))
    assert "since HEAD: inserted" in hover.contents.value
