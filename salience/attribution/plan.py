"""What a run will do, decided once before any model call: the method and its parameters, the prompt's tokens
as explained (truncated, with the sink), what is explained, and the key its result is cached under."""

from __future__ import annotations

import json
import time
from collections.abc import Hashable
from dataclasses import dataclass

from salience.attribution.errors import ParameterError
from salience.attribution.methods import (
    DEFAULT_METHOD,
    SERVED_METHOD,
    Method,
    MethodParams,
    default_method,
    fallback_note,
    get_method,
    is_default,
    served_methods,
)
from salience.attribution.model import LoadedModel
from salience.attribution.request import Request
from salience.attribution.tokens import encode_prompt, use_chat
from salience.prompt.document import PromptDocument
from salience.prompt.words import word_starts

MAX_SOURCE_TOKENS = 8192


@dataclass(frozen=True)
class Source:
    """The prompt's tokens as the method sees them, with their file ranges (None: a template token)."""

    ids: list[int]
    ranges: list[tuple[int, int] | None]
    text: str
    """The file the ranges point into."""
    dropped: int = 0
    """Tokens left out after the sink (`Request.max_source_tokens`)."""
    sink: int = 0
    """Leading tokens added as an attention sink."""


@dataclass(frozen=True)
class TargetSpec:
    """What is explained: forced text, or the greedy continuation (checked against a draft of it where given)."""

    text: str | None
    contrast: str | None
    max_new_tokens: int
    draft: list[int] | None


@dataclass(frozen=True)
class Plan:
    """A run, decided: everything that decides its scores, parsed and checked once."""

    method: Method
    params: MethodParams
    source: Source
    chat: bool
    target: TargetSpec
    key: Hashable
    """The result cache's key: exact token ids, their words, and every setting that decides the scores."""
    seconds: float
    """How long tokenising took."""
    stand_in: str | None = None
    """Where the default method does not cover the model: the line saying which method stands in."""


def requested_method(doc: PromptDocument, request: Request) -> Method:
    """The method the request names (else the front matter's, else the default), its parameters checked.

    Callers run this before loading a model, so a bad name or parameter fails in milliseconds.
    """
    method = _named(doc, request)
    method.parse_params(request.params)
    return method


def _named(doc: PromptDocument, request: Request) -> Method:
    name = request.method or doc.front_matter.method
    return get_method(DEFAULT_METHOD if is_default(name) else name)


def plan_run(loaded: LoadedModel, doc: PromptDocument, request: Request) -> Plan:
    """Resolve a request against a document and a loaded model (the default method this model supports)."""
    if doc.is_blank:
        raise ParameterError("the prompt is empty: write some text to explain")
    front = doc.front_matter
    method = _named(doc, request)
    stand_in = None
    if is_default(request.method or front.method) and (supported := default_method(loaded)) != method.name:
        method.parse_params(request.params)  # checked against the default named, as before a model loads
        method = get_method(supported)
        stand_in = None if loaded.served else fallback_note(loaded)
    params = method.parse_params(request.params)
    if not loaded.served and (gap := method.coverage_gap(loaded)) is not None:
        raise ParameterError(f"{method.name} {gap}; use {default_method(loaded)} (this model's default)")
    if loaded.served and method.needs_weights:
        raise ParameterError(
            f"{method.name} needs the model's weights; a served model offers only perturbation methods: "
            f"use {SERVED_METHOD} (its default) or {', '.join(m for m in served_methods() if m != SERVED_METHOD)}"
        )
    start = time.perf_counter()
    chat = use_chat(doc, loaded.has_chat_template)
    source = _source(doc, loaded, chat, request.max_source_tokens)
    seconds = time.perf_counter() - start
    text = request.target if request.target is not None else front.target
    max_new_tokens = request.max_new_tokens or front.max_new_tokens
    target = TargetSpec(
        text,
        request.contrast if request.contrast is not None else front.contrast,
        max_new_tokens,
        request.draft[:max_new_tokens] if request.draft and text is None else None,
    )
    key = (
        loaded.model_id,
        str(loaded.device),
        str(loaded.dtype),
        method.name,
        json.dumps(request.params or {}, sort_keys=True, default=str),
        tuple(source.ids),
        tuple(word_starts(source.text, source.ranges)) if method.word_players else (),  # what players are made of
        target.text,
        target.contrast,
        max_new_tokens,
        chat,
    )
    return Plan(method, params, source, chat, target, key, seconds, stand_in)


def _source(doc: PromptDocument, loaded: LoadedModel, chat: bool, limit: int | None) -> Source:
    encoded = encode_prompt(doc, loaded.tokenizer, chat)
    if not encoded.input_ids:
        raise ParameterError("the prompt is empty: write some text to explain")
    ids, ranges, dropped = _truncated(encoded.input_ids, encoded.ranges, limit, source_limit(loaded), encoded.sink)
    return Source(ids, ranges, doc.text, dropped, encoded.sink)


def source_limit(loaded: LoadedModel) -> int:
    """The most prompt tokens explained: MAX_SOURCE_TOKENS, or less where the model's context is shorter."""
    context = loaded.context_length or MAX_SOURCE_TOKENS
    return max(16, min(MAX_SOURCE_TOKENS, context - 64))  # room for the explained continuation


def _truncated(
    ids: list[int],
    ranges: list[tuple[int, int] | None],
    limit: int | None,
    hard_limit: int = MAX_SOURCE_TOKENS,
    sink: int = 0,
) -> tuple[list[int], list[tuple[int, int] | None], int]:
    """Keep the last `limit` tokens (a user setting) after the `sink` leading ones, or refuse prompts above
    the hard limit."""
    if limit is None:
        if len(ids) > hard_limit:
            raise ParameterError(f"the prompt has {len(ids)} tokens; the limit is {hard_limit} for this model")
        return ids, ranges, 0
    limit = max(1, min(limit, hard_limit - sink))
    dropped = max(0, len(ids) - sink - limit)
    kept = slice(sink + dropped, None)
    return ids[:sink] + ids[kept], ranges[:sink] + ranges[kept], dropped
