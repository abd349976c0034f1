"""LSP handlers: translate requests and notifications to calls on the features and rendered views.

Each handler is thin and never touches torch; they are named after the LSP method they serve.
"""

from __future__ import annotations

import fnmatch
import logging
from typing import Any
from urllib.parse import unquote, urlparse

from lsprotocol import types

from salience.attribution import Cancelled, SalienceError, method_classes, method_names
from salience.server import compare_mode
from salience.server.layers import heatmap
from salience.server.positions import encoding_name
from salience.server.server import SalienceProtocol, SalienceServer
from salience.server.settings import SECTION, section_of
from salience.server.worker import ModelWorker

log = logging.getLogger(__name__)
PROMPT_LANGUAGES = {"prompt", "prompty"}


def is_prompt(server: SalienceServer, uri: str, language_id: str | None = None) -> bool:
    """A document is ours when its language is a prompt language or its path matches the file globs."""
    if language_id in PROMPT_LANGUAGES:
        return True
    path = unquote(urlparse(uri).path)
    return any(
        fnmatch.fnmatch(path, glob) or fnmatch.fnmatch(path, glob.removeprefix("**/"))
        for glob in server.features.config.settings.file_globs
    )


def create_server(
    worker: ModelWorker | None = None,
    client: str = "",
    protocol_cls: type[SalienceProtocol] = SalienceProtocol,
) -> SalienceServer:
    """A server with every feature; on a shared host, many of them over one `worker`."""
    server = SalienceServer(worker, client, protocol_cls)
    register_features(server)
    return server


def register_features(server: SalienceServer) -> None:
    """Register every feature of the server."""
    _lifecycle(server)
    _sync(server)
    _layers(server)
    _commands(server)


def _lifecycle(server: SalienceServer) -> None:
    @server.feature(types.INITIALIZE)
    def initialize(ls: SalienceServer, params: types.InitializeParams) -> None:
        """Read settings from initializationOptions and the negotiated position encoding."""
        ls.initialization_options = section_of(params.initialization_options)
        ls.features.encoding = encoding_name(ls.workspace.position_encoding)
        _apply_settings(ls, None)
        ls.features.preload()  # the first file opens right after: have the model ready

    @server.feature(types.INITIALIZED)
    async def initialized(ls: SalienceServer, params: types.InitializedParams) -> None:
        """Pull workspace settings and watch prompt files on disk."""
        await _pull_configuration(ls)
        if ls.supports("workspace", "did_change_watched_files", "dynamic_registration"):
            watchers = [types.FileSystemWatcher(glob_pattern=g) for g in ls.features.config.settings.file_globs]
            await ls.client_register_capability_async(
                types.RegistrationParams(
                    [
                        types.Registration(
                            "salience-watch",
                            types.WORKSPACE_DID_CHANGE_WATCHED_FILES,
                            types.DidChangeWatchedFilesRegistrationOptions(watchers=watchers),
                        )
                    ]
                )
            )

    @server.feature(types.WORKSPACE_DID_CHANGE_CONFIGURATION)
    async def workspace_did_change_configuration(
        ls: SalienceServer, params: types.DidChangeConfigurationParams
    ) -> None:
        """Re-read settings (pushed in the notification or pulled), swap the model if needed, re-run."""
        pushed = section_of(params.settings) if isinstance(params.settings, dict) and params.settings else None
        if pushed is not None and SECTION in (params.settings or {}):
            _apply_settings(ls, pushed)
        else:
            await _pull_configuration(ls)

    @server.feature(types.WORKSPACE_DID_CHANGE_WATCHED_FILES)
    def workspace_did_change_watched_files(ls: SalienceServer, params: types.DidChangeWatchedFilesParams) -> None:
        """A prompt file changed on disk: re-run it if open, else drop its cached results."""
        for change in params.changes:
            ls.features.file_changed_on_disk(change.uri)

    @server.feature(types.SHUTDOWN)
    def shutdown(ls: SalienceServer, params: None) -> None:
        """Stop the model worker."""
        ls.features.shutdown()


async def _pull_configuration(ls: SalienceServer) -> None:
    if not ls.supports("workspace", "configuration"):
        return
    try:
        items = await ls.workspace_configuration_async(
            types.ConfigurationParams([types.ConfigurationItem(section=SECTION)])
        )
    except Exception as err:
        log.warning("workspace/configuration failed: %s", err)
        return
    _apply_settings(ls, section_of(items[0]) if items else None)


def _apply_settings(ls: SalienceServer, workspace: dict[str, Any] | None) -> None:
    """Merge user (initializationOptions) and workspace settings; only the user's can allow workspace models."""
    for problem in ls.features.apply_settings(ls.initialization_options, workspace):
        ls.window_show_message(types.ShowMessageParams(types.MessageType.Warning, problem))


def _sync(server: SalienceServer) -> None:
    @server.feature(types.TEXT_DOCUMENT_DID_OPEN)
    def text_document_did_open(ls: SalienceServer, params: types.DidOpenTextDocumentParams) -> None:
        """Attribute a prompt file as soon as it opens."""
        doc = params.text_document
        if is_prompt(ls, doc.uri, doc.language_id):
            ls.features.opened(doc.uri, doc.version)

    @server.feature(types.TEXT_DOCUMENT_DID_CHANGE)
    def text_document_did_change(ls: SalienceServer, params: types.DidChangeTextDocumentParams) -> None:
        """Shift the shown spans through the edits and debounce a new run."""
        uri = params.text_document.uri
        edits = ls.protocol.edits.pop(uri, None)  # noted by SalienceProtocol before pygls applied the changes
        ls.features.edited(uri, params.text_document.version, edits)

    @server.feature(types.TEXT_DOCUMENT_DID_SAVE)
    def text_document_did_save(ls: SalienceServer, params: types.DidSaveTextDocumentParams) -> None:
        """Run at once on save."""
        if params.text_document.uri in ls.features.documents:
            ls.features.runs.schedule(params.text_document.uri, 0.0)

    @server.feature(types.TEXT_DOCUMENT_DID_CLOSE)
    def text_document_did_close(ls: SalienceServer, params: types.DidCloseTextDocumentParams) -> None:
        """Stop work for a closed document and clear its diagnostics."""
        uri = params.text_document.uri
        if uri in ls.features.documents:
            ls.features.closed(uri)
            ls.text_document_publish_diagnostics(types.PublishDiagnosticsParams(uri, []))


def _layers(server: SalienceServer) -> None:
    @server.feature(types.TEXT_DOCUMENT_SEMANTIC_TOKENS_FULL, heatmap.LEGEND)
    def text_document_semantic_tokens_full(ls: SalienceServer, params: types.SemanticTokensParams):
        """The heatmap as semantic tokens for the whole document."""
        view = ls.features.view(params.text_document.uri)
        return types.SemanticTokens(data=heatmap.semantic_tokens(view) if view else [])

    @server.feature(types.TEXT_DOCUMENT_SEMANTIC_TOKENS_RANGE, heatmap.LEGEND)
    def text_document_semantic_tokens_range(ls: SalienceServer, params: types.SemanticTokensRangeParams):
        """The heatmap as semantic tokens inside a range."""
        view = ls.features.view(params.text_document.uri)
        if view is None:
            return types.SemanticTokens(data=[])
        start, end = view.lines.offset(params.range.start), view.lines.offset(params.range.end)
        return types.SemanticTokens(data=heatmap.semantic_tokens(view, start, end))

    @server.feature(types.TEXT_DOCUMENT_HOVER)
    def text_document_hover(ls: SalienceServer, params: types.HoverParams) -> types.Hover | None:
        """Score, share and rank of the token under the cursor."""
        view = ls.features.view(params.text_document.uri)
        return heatmap.hover(view, view.lines.offset(params.position)) if view else None

    @server.feature(types.TEXT_DOCUMENT_INLAY_HINT)
    def text_document_inlay_hint(ls: SalienceServer, params: types.InlayHintParams):
        """Score labels after the top-k tokens."""
        view = ls.features.view(params.text_document.uri)
        if view is None:
            return []
        return heatmap.inlay_hints(view, view.lines.offset(params.range.start), view.lines.offset(params.range.end))

    @server.feature(types.TEXT_DOCUMENT_CODE_LENS)
    def text_document_code_lens(ls: SalienceServer, params: types.CodeLensParams):
        """What is explained and the commands, on line 0."""
        view = ls.features.view(params.text_document.uri)
        return heatmap.code_lenses(view, params.text_document.uri) if view else []

    @server.feature(types.WINDOW_WORK_DONE_PROGRESS_CANCEL)
    def window_work_done_progress_cancel(ls: SalienceServer, params: types.WorkDoneProgressCancelParams) -> None:
        """The user cancelled a run from its progress notification."""
        ls.features.runs.cancel_progress(str(params.token))


def _commands(server: SalienceServer) -> None:
    @server.command("salience.run")
    def run(ls: SalienceServer, *args: Any) -> None:
        """Run now: salience.run(uri)."""
        ls.features.runs.schedule(_document(ls, args), 0.0)

    @server.command("salience.setMethod")
    async def set_method(ls: SalienceServer, *args: Any) -> None:
        """Set this document's method: salience.setMethod(uri, method); without a method, ask the user."""
        uri = _document(ls, args)
        method = args[1] if len(args) > 1 else await _choose_method(ls)
        if method is not None:
            ls.features.set_method(uri, method or None)

    @server.command("salience.setTarget")
    def set_target(ls: SalienceServer, *args: Any) -> None:
        """Explain this text instead of the continuation: salience.setTarget(uri, text); no text resets it."""
        ls.features.set_target(_document(ls, args), args[1] if len(args) > 1 else None)

    @server.command("salience.faithfulness")
    async def faithfulness(ls: SalienceServer, *args: Any) -> dict[str, Any] | None:
        """Measure how faithful the shown scores are: salience.faithfulness(uri); the summary is shown."""
        uri = _document(ls, args)
        try:
            figures = await ls.features.faithfulness(uri)
        except Cancelled:
            return None
        except SalienceError as err:
            ls.window_show_message(types.ShowMessageParams(types.MessageType.Warning, f"salience: {err}"))
            return None
        ls.window_show_message(types.ShowMessageParams(types.MessageType.Info, f"salience: {figures.summary()}"))
        return figures.to_dict()

    @server.command("salience.methods")
    def methods(ls: SalienceServer, *args: Any) -> list[dict[str, Any]]:
        """The registered methods, for a client's method picker: [{name, description, cost}]."""
        return [{"name": cls.name, "description": cls.description, "cost": cls.cost} for cls in method_classes()]

    @server.command("salience.pin")
    def pin(ls: SalienceServer, *args: Any) -> None:
        """Keep the current result, to compare later versions with: salience.pin(uri)."""
        _tell(ls, ls.features.compare.pin(_document(ls, args)))

    @server.command("salience.compare")
    async def compare_with(ls: SalienceServer, *args: Any) -> None:
        """Show the change of relevance since another version: salience.compare(uri, "HEAD" | "saved" | "pinned");
        "off" goes back to the heatmap; without a version, ask the user."""
        uri = _document(ls, args)
        against = args[1] if len(args) > 1 else await _choose(ls, "salience: compare with", compare_mode.AGAINST)
        if against is None:
            return
        try:
            _tell(ls, await ls.features.compare.start(uri, against))
        except Cancelled:
            return
        except SalienceError as err:
            ls.window_show_message(types.ShowMessageParams(types.MessageType.Warning, f"salience: {err}"))

    @server.command("salience.clear")
    def clear(ls: SalienceServer, *args: Any) -> None:
        """Remove the heatmap from a document: salience.clear(uri)."""
        ls.features.clear(_document(ls, args))


def _document(ls: SalienceServer, args: tuple[Any, ...]) -> str:
    """The open document a command names (its first argument, a URI or {uri: ...}).

    Without one (Helix, Sublime and Emacs palettes send none), the document edited most recently.
    """
    first = args[0] if args else None
    uri = first.get("uri") if isinstance(first, dict) else first
    if uri is None:
        uri = ls.features.documents.latest
    if not isinstance(uri, str) or uri not in ls.features.documents:
        raise SalienceError(f"salience: no open prompt document {uri!r}; pass the document URI as the argument")
    return uri


def _tell(ls: SalienceServer, message: str) -> None:
    ls.window_show_message(types.ShowMessageParams(types.MessageType.Info, f"salience: {message}"))


async def _choose_method(ls: SalienceServer) -> str | None:
    return await _choose(ls, "salience: attribution method", method_names())


async def _choose(ls: SalienceServer, question: str, choices) -> str | None:
    """Ask the user to pick one of `choices` (None when the client cannot ask or the user dismissed it)."""
    if not ls.supports("window", "show_message"):
        return None
    try:
        picked = await ls.window_show_message_request_async(
            types.ShowMessageRequestParams(
                types.MessageType.Info, question, actions=[types.MessageActionItem(name) for name in choices]
            )
        )
    except Exception as err:  # a client without message requests: keep the method
        log.info("showMessageRequest failed: %s", err)
        return None
    return picked.title if picked else None
