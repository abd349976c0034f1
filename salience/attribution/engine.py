"""`explain()`: prompt document + model + method → `AttributionResult`. The CLI and the server call this."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from salience.attribution.errors import ParameterError
from salience.attribution.methods import DEFAULT_METHOD, AttributionInput, Method, get_method
from salience.attribution.model import LoadedModel
from salience.attribution.progress import CancelCheck, Progress, no_cancel, no_progress
from salience.attribution.prompt import PromptDocument
from salience.attribution.result import AttributionResult
from salience.attribution.targets import resolve_target
from salience.attribution.tokens import encode_prompt, use_chat

MAX_SOURCE_TOKENS = 4096


@dataclass
class Request:
    """Run settings after merging (CLI flags or editor settings < front matter < explicit overrides)."""

    method: str | None = None
    params: dict[str, Any] | None = None
    target: str | None = None
    contrast: str | None = None
    max_new_tokens: int | None = None


def requested_method(doc: PromptDocument, request: Request) -> Method:
    """The method the request names (else the front matter's, else the default), its parameters checked.

    Callers run this before loading a model, so a bad name or parameter fails in milliseconds.
    """
    method = get_method(request.method or doc.front_matter.method or DEFAULT_METHOD)
    method.parse_params(request.params)
    return method


def explain(loaded: LoadedModel, doc: PromptDocument, request: Request | None = None,
            progress: Progress = no_progress, cancelled: CancelCheck = no_cancel) -> AttributionResult:
    """Attribute the document's explained target to its tokens with the requested method."""
    request = request or Request()
    front = doc.front_matter
    method = requested_method(doc, request)
    timings: dict[str, float] = {}

    start = time.perf_counter()
    chat = use_chat(doc, loaded.has_chat_template)
    encoded = encode_prompt(doc, loaded.tokenizer, chat)
    if not encoded.input_ids:
        raise ParameterError("the prompt is empty: write some text to explain")
    if len(encoded.input_ids) > MAX_SOURCE_TOKENS:
        raise ParameterError(f"the prompt has {len(encoded.input_ids)} tokens; the limit is {MAX_SOURCE_TOKENS}")
    timings["tokenize"] = time.perf_counter() - start

    start = time.perf_counter()
    contrast = request.contrast if request.contrast is not None else front.contrast
    target = resolve_target(
        loaded, encoded.input_ids, request.target if request.target is not None else front.target, contrast,
        request.max_new_tokens or front.max_new_tokens, _scaled(progress, 0.0, 0.1), cancelled)
    timings["target"] = time.perf_counter() - start

    inputs = AttributionInput(loaded, encoded.input_ids, encoded.ranges, target, chat=chat, contrast=contrast,
                              progress=_scaled(progress, 0.1, 1.0), cancelled=cancelled, timings=timings)
    return method.attribute(inputs, request.params)


def _scaled(progress: Progress, low: float, high: float) -> Progress:
    """Map a step's own 0..1 progress into [low, high] of the whole run."""
    def report(fraction: float, message: str = "") -> None:
        progress(low + (high - low) * min(max(fraction, 0.0), 1.0), message)
    return report
