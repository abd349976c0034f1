"""The real server and engine on the tiny model, as Neovim 0.11 and as VS Code."""

from __future__ import annotations

import asyncio
import re

import pytest
from lsp_decode import decode_semantic_tokens, split_lines, text_of_range
from lsprotocol import types

from salience.attribution import DEFAULT_METHOD
from salience.server.layers import heatmap

pytestmark = pytest.mark.asyncio(loop_scope="module")  # the module's servers (conftest)

UNICODE = "Café 😀 and 日本語 e\u0301!\r\nsecond 👩‍💻 line\nlast"
FRONT = "---\nmethod: integrated_gradients\n---\n"
SLOW = FRONT + "The vault code is 7733. Repeat the vault code:"


def doc_id(uri: str) -> types.TextDocumentIdentifier:
    return types.TextDocumentIdentifier(uri)


def characters(text: str) -> list[str]:
    """The file's characters without line breaks (the tiny tokenizer gives each its own span)."""
    return [ch for line in split_lines(text) for ch in line]


def visible(text: str) -> str:
    """The text without blanks: the words the ranges cover start at their first visible character."""
    return re.sub(r"\s", "", text)


async def test_scores_land_on_the_right_characters(session):
    uri = session.open("unicode.prompt", UNICODE)
    payload = await session.result_for(uri)
    covered = [text_of_range(UNICODE, r, session.encoding) for r in payload["ranges"]]
    assert visible("".join(covered)) == visible(UNICODE)
    assert "😀" in covered and "日" in covered and "e\u0301" in covered  # whole words of whole code points

    tokens = await session.client.text_document_semantic_tokens_full_async(types.SemanticTokensParams(doc_id(uri)))
    decoded = decode_semantic_tokens(UNICODE, list(tokens.data), session.encoding)
    expected = [(text, level - 1) for text, level in zip(covered, payload["levels"]) if level]
    assert [(token, kind) for _, _, token, kind, _ in decoded] == expected
    assert (
        session.refreshes.get(types.WORKSPACE_SEMANTIC_TOKENS_REFRESH, 0) >= 1
        or not session.client.capabilities.workspace.semantic_tokens
    )
    watched = session.client.capabilities.workspace.did_change_watched_files
    if watched and watched.dynamic_registration:
        assert types.WORKSPACE_DID_CHANGE_WATCHED_FILES in [r.method for r in session.registrations]


async def test_semantic_tokens_range_matches_full(session):
    uri = session.open("range.prompt", UNICODE)
    await session.result_for(uri)
    full = await session.client.text_document_semantic_tokens_full_async(types.SemanticTokensParams(doc_id(uri)))
    first_line = types.Range(types.Position(0, 0), types.Position(1, 0))
    part = await session.client.text_document_semantic_tokens_range_async(
        types.SemanticTokensRangeParams(doc_id(uri), first_line)
    )
    all_tokens = decode_semantic_tokens(UNICODE, list(full.data), session.encoding)
    assert decode_semantic_tokens(UNICODE, list(part.data), session.encoding) == [t for t in all_tokens if t[0] == 0]


async def test_hover_shows_the_score_and_inlay_hints_mark_top_k(session):
    uri = session.open("hover.prompt", UNICODE)
    payload = await session.result_for(uri)
    best = max(range(len(payload["relevance"])), key=lambda i: abs(payload["relevance"][i]))
    assert abs(payload["scores"][best]) == 1.0  # the strongest word has full colour
    line, character = payload["ranges"][best][:2]
    hover = await session.client.text_document_hover_async(
        types.HoverParams(doc_id(uri), types.Position(line, character))
    )
    assert "rank 1 of" in hover.contents.value and re.search(r"relevance to '.*': [-+]\d+\.\d{4}", hover.contents.value)

    whole = types.Range(types.Position(0, 0), types.Position(len(split_lines(UNICODE)), 0))
    hints = await session.client.text_document_inlay_hint_async(types.InlayHintParams(doc_id(uri), whole))
    assert len(hints) == 5
    assert types.Position(*payload["ranges"][best][2:]) in [h.position for h in hints]


async def test_code_lens_and_commands(session):
    uri = session.open("lens.prompt", UNICODE)
    await session.result_for(uri)
    lenses = await session.client.text_document_code_lens_async(types.CodeLensParams(doc_id(uri)))
    assert {lens.command.command for lens in lenses} == set(heatmap.COMMANDS)
    figures = await session.client.workspace_execute_command_async(
        types.ExecuteCommandParams("salience.faithfulness", [uri])
    )
    assert figures["soft_nc"] >= 0 and len(figures["morf"]) == 11
    assert any("× random" in m.message for m in session.client.messages if m.type == types.MessageType.Info)
    await session.client.workspace_execute_command_async(
        types.ExecuteCommandParams("salience.setMethod", [uri, "occlusion"])
    )
    await session.wait_scores(lambda p: p["uri"] == uri and p["method"] == "occlusion" and p["ranges"])
    methods = await session.client.workspace_execute_command_async(types.ExecuteCommandParams("salience.methods"))
    assert {"input_x_gradient", "occlusion"} <= {m["name"] for m in methods} and all(m["cost"] for m in methods)
    # No argument (Helix, Sublime, Emacs palettes): the document edited most recently.
    await session.client.workspace_execute_command_async(types.ExecuteCommandParams("salience.clear"))
    cleared = await session.wait_scores(lambda p: p["uri"] == uri and not p["ranges"])
    assert cleared["method"] is None


async def test_typing_during_a_run_never_shows_another_version(session):
    uri = session.open("typing.prompt", SLOW)
    text = SLOW
    for i in range(6):
        await asyncio.sleep(0.04 * i)
        at = text.index("Repeat")
        line = len(split_lines(text[:at])) - 1
        position = types.Position(line, at - (text.rfind("\n", 0, at) + 1))  # just before "Repeat" (ASCII)
        text = text[:at] + f"w{i} " + text[at:]
        session.edit(uri, position, position, f"w{i} ", text)
    final = session.versions[uri]
    await session.result_for(uri, final, method="integrated_gradients")
    seen = 0
    for payload in session.scores:
        if payload["uri"] != uri or not payload["ranges"]:
            continue
        assert payload["version"] >= seen  # never an older version after a newer one
        seen = payload["version"]
        shown = [
            text_of_range(session.texts[(uri, payload["version"])], r, session.encoding) for r in payload["ranges"]
        ]
        source = session.texts[(uri, payload["computedVersion"])]
        if payload["computedVersion"] == payload["version"]:  # fresh: exactly that version's body
            assert visible("".join(shown)) == visible(source[len(FRONT) :])
        else:  # shifted through edits: only characters that the computed version had, none typed since
            assert not set("".join(shown)) - set(source), (payload["method"], payload["computedVersion"])
            assert len(shown) <= len(characters(source[len(FRONT) :]))
    previews = [p for p in session.scores if p["uri"] == uri and p["previewOf"] == "integrated_gradients"]
    assert previews and all(p["method"] == DEFAULT_METHOD for p in previews)


async def expensive_run(session, name: str, method: str, text: str, progress: str) -> tuple[str, dict]:
    """An expensive method named in front matter: a preview by the default method, progress, then the method."""
    uri = session.open(name, text)
    final = await session.result_for(uri, method=method)
    mine = [p for p in session.scores if p["uri"] == uri and p["ranges"]]
    assert mine[0]["method"] == DEFAULT_METHOD and mine[0]["previewOf"] == method
    assert final["previewOf"] is None and mine.index(final) > 0
    reports = [r for rs in session.client.progress_reports.values() for r in rs]
    assert progress in " ".join(getattr(r, "message", None) or "" for r in reports)
    assert any(isinstance(r, types.WorkDoneProgressReport) and r.percentage for r in reports)
    return uri, final


async def test_sig_in_front_matter_shows_a_preview_progress_then_sig(session):
    text = "---\nmethod: sequential_integrated_gradients\n---\nThe vault code is 7733. Repeat it:"
    await expensive_run(
        session, "sig.prompt", "sequential_integrated_gradients", text, "sequential integrated gradients"
    )


async def test_reagent_in_front_matter_shows_a_preview_progress_then_reagent(session):
    await session.configure(
        debounceMs=0,
        methodParams={
            "reagent": {  # long enough (~2 s) to show progress
                "probes": 16,
                "max_steps": 400,
                "keep_top_n": 1,
                "stop_top_k": 1,
                "memory_budget_mb": 16,
            }
        },
    )
    text = "---\nmethod: reagent\nmax_new_tokens: 2\n---\nThe vault code is 7733. Repeat it:"
    await expensive_run(session, "reagent.prompt", "reagent", text, "ReAGent step")


async def test_textgenshap_shows_progress_then_word_values_with_errors_in_the_hover(session):
    await session.configure(
        debounceMs=0,
        methodParams={
            "textgenshap": {  # sampled, ~2 s: progress shows
                "exact_players": 0,
                "tolerance": 1e-9,
                "max_permutations": 96,
                "expand_share": 1.0,
                "level": "token",
                "memory_budget_mb": 16,
            }
        },
    )
    text = (
        "---\nmethod: textgenshap\nmax_new_tokens: 2\n---\nDocument 1: the red door code is 7733.\n"
        "Document 2: the blue door code is 4812, as the note says.\n\nQuestion: the red code?"
    )
    uri, final = await expensive_run(session, "textgenshap.prompt", "textgenshap", text, "TextGenSHAP")
    line, character = final["ranges"][0][:2]
    hover = await session.client.text_document_hover_async(
        types.HoverParams(doc_id(uri), types.Position(line, character))
    )
    assert re.search(
        r"segment `Document 1: the red door code is 7733\.?`: value \*\*[-+]\d+\.\d{3}\*\*", hover.contents.value
    ), repr(hover.contents.value)
    assert re.search(r"± \d\.\d{3}", hover.contents.value) and "(exact)" not in hover.contents.value  # all sampled


async def test_cancel_from_progress_stops_the_run(session):
    await session.configure(
        debounceMs=0,
        progressive=False,
        methodParams={
            "integrated_gradients": {  # long: many batches
                "steps": 1024,
                "memory_budget_mb": 16,
            }
        },
    )
    earlier = set(session.client.progress_reports)  # an earlier test's run may still be ending
    uri = session.open("cancel.prompt", SLOW)

    def mine() -> list:
        return [t for t, reports in session.client.progress_reports.items() if reports and t not in earlier]

    await session.until(mine)  # a token is created before its first report arrives: wait for the report
    token = mine()[0]
    session.client.window_work_done_progress_cancel(types.WorkDoneProgressCancelParams(token))
    await session.until(lambda: isinstance(session.client.progress_reports[token][-1], types.WorkDoneProgressEnd))
    end = session.client.progress_reports[token][-1]
    assert isinstance(end, types.WorkDoneProgressEnd) and end.message == "cancelled"
    assert not any(p["uri"] == uri and p["method"] == "integrated_gradients" for p in session.scores)


async def test_bad_settings_and_a_missing_model_do_not_crash(session):
    session.client.workspace_did_change_configuration(
        types.DidChangeConfigurationParams(
            settings={"salience": {"debounceMs": "soon", "bins": "weird", "model": session.client.session_model}}
        )
    )
    uri = session.open("missing.prompt", "---\nmodel: /no/such/model\n---\nhello")
    await session.until(
        lambda: any(d.severity == types.DiagnosticSeverity.Error for d in session.client.diagnostics.get(uri, []))
    )
    errors = [d for d in session.client.diagnostics[uri] if d.severity == types.DiagnosticSeverity.Error]
    assert errors and "/no/such/model" in errors[0].message
    warnings = [m.message for m in session.client.messages if m.type == types.MessageType.Warning]
    assert any("debounceMs" in m for m in warnings) and any("bins" in m for m in warnings)
    huge = session.open("huge.prompt", "x" * 1_000_001)
    notes = session.open("notes.txt", UNICODE, language_id="plaintext")  # not a prompt file: ignored
    ok = session.open("ok.prompt", UNICODE)
    assert (await session.result_for(ok))["ranges"]
    assert any("too large" in d.message for d in session.client.diagnostics.get(huge, []))
    assert not any(p["uri"] == notes for p in session.scores)


async def test_save_and_disk_changes_rerun_open_files(session):
    uri = session.open("saved.prompt", UNICODE)
    await session.result_for(uri)
    before = len(session.scores)
    session.client.text_document_did_save(types.DidSaveTextDocumentParams(doc_id(uri)))
    await session.wait_scores(lambda p: p["uri"] == uri and p["ranges"], start=before)
    before = len(session.scores)
    session.client.workspace_did_change_watched_files(
        types.DidChangeWatchedFilesParams(
            [
                types.FileEvent(uri, types.FileChangeType.Changed),
                types.FileEvent((session.root / "closed.prompt").as_uri(), types.FileChangeType.Changed),
            ]
        )
    )
    await session.wait_scores(lambda p: p["uri"] == uri and p["ranges"], start=before)


async def test_set_method_asks_the_user_and_close_stops_work(session):
    @session.client.feature(types.WINDOW_SHOW_MESSAGE_REQUEST)
    def pick(params: types.ShowMessageRequestParams):
        return next(a for a in params.actions if a.title == "saliency")

    uri = session.open("ask.prompt", UNICODE)
    await session.result_for(uri)
    await session.client.workspace_execute_command_async(types.ExecuteCommandParams("salience.setMethod", [uri]))
    await session.wait_scores(lambda p: p["uri"] == uri and p["method"] == "saliency" and p["ranges"])
    session.client.text_document_did_close(types.DidCloseTextDocumentParams(doc_id(uri)))
    await session.until(lambda: not session.client.diagnostics.get(uri, [None]))
    assert not session.client.diagnostics.get(uri, [None])
    hover = await session.client.text_document_hover_async(types.HoverParams(doc_id(uri), types.Position(0, 1)))
    assert hover is None
