"""`explain()`: prompt document + model + method → `AttributionResult`. The CLI and the server call this."""

from __future__ import annotations

import json
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import replace
from functools import partial
from typing import Any

from salience.attribution.compute.memory import attribute_within_memory
from salience.attribution.errors import ParameterError
from salience.attribution.methods import (
    DEFAULT_METHOD,
    AttributionInput,
    Method,
    default_method,
    get_method,
    is_default,
)
from salience.attribution.model import LoadedModel
from salience.attribution.progress import CancelCheck, Progress, no_cancel, no_progress
from salience.attribution.request import Request
from salience.attribution.result import AttributionResult, SourceToken
from salience.attribution.targets import (
    DraftCheck,
    DraftRejected,
    continue_verdict,
    decision_margin,
    resolve_target,
    stop_ids,
    with_foil,
)
from salience.attribution.tokens import encode_prompt, use_chat
from salience.prompt.document import PromptDocument
from salience.prompt.words import word_starts

MAX_SOURCE_TOKENS = 8192


class ResultCache:
    """A small LRU of results keyed by exact token ids and everything else that decides the scores."""

    def __init__(self, size: int = 64) -> None:
        self.size = size
        self._items: OrderedDict[Hashable, AttributionResult] = OrderedDict()
        self._owners: dict[str, set[Hashable]] = {}

    def get(self, key: Hashable) -> AttributionResult | None:
        if key in self._items:
            self._items.move_to_end(key)
            return self._items[key]
        return None

    def put(self, key: Hashable, result: AttributionResult, owner: str | None = None) -> None:
        self._items[key] = result
        self._items.move_to_end(key)
        if owner is not None:
            self._owners.setdefault(owner, set()).add(key)
        while len(self._items) > self.size:
            self._items.popitem(last=False)

    def drop_owner(self, owner: str) -> None:
        """Forget the results stored for one owner (e.g. a file that changed on disk)."""
        for key in self._owners.pop(owner, set()):
            self._items.pop(key, None)

    def clear(self) -> None:
        self._items.clear()
        self._owners.clear()

    def __len__(self) -> int:
        return len(self._items)


def requested_method(doc: PromptDocument, request: Request) -> Method:
    """The method the request names (else the front matter's, else the default), its parameters checked.

    Callers run this before loading a model, so a bad name or parameter fails in milliseconds.
    """
    name = request.method or doc.front_matter.method
    method = get_method(DEFAULT_METHOD if is_default(name) else name)
    method.parse_params(request.params)
    return method


def explain(
    loaded: LoadedModel,
    doc: PromptDocument,
    request: Request | None = None,
    progress: Progress = no_progress,
    cancelled: CancelCheck = no_cancel,
    cache: ResultCache | None = None,
    owner: str | None = None,
    on_heatmap: Callable[[AttributionResult], None] | None = None,
    stop: CancelCheck | None = None,
) -> AttributionResult:
    """Attribute the document's explained target to its tokens with the requested method.

    With a `cache`, a prompt whose token ids and settings were explained before is answered from
    it, with the token ranges of this document (the same ids may sit at other file offsets).
    `on_heatmap` receives the heatmap first where the method computes it in one pass (the rows follow;
    a cancel between them stops the run after the heatmap). `stop` is checked inside a one-pass method's
    pass (default: `cancelled`, which a shared server also uses to let other runs take turns).
    """
    request = request or Request()
    if doc.is_blank:
        raise ParameterError("the prompt is empty: write some text to explain")
    front = doc.front_matter
    method = requested_method(doc, request)
    if is_default(request.method or front.method):  # the default this model supports
        method = get_method(default_method(loaded))
    timings: dict[str, float] = {}

    start = time.perf_counter()
    chat = use_chat(doc, loaded.has_chat_template)
    encoded = encode_prompt(doc, loaded.tokenizer, chat)
    if not encoded.input_ids:
        raise ParameterError("the prompt is empty: write some text to explain")
    input_ids, ranges, dropped = _truncated(
        encoded.input_ids, encoded.ranges, request.max_source_tokens, source_limit(loaded), encoded.sink
    )
    timings["tokenize"] = time.perf_counter() - start

    contrast = request.contrast if request.contrast is not None else front.contrast
    target_text = request.target if request.target is not None else front.target
    max_new_tokens = request.max_new_tokens or front.max_new_tokens
    key = (
        loaded.model_id,
        str(loaded.device),
        str(loaded.dtype),
        method.name,
        json.dumps(request.params or {}, sort_keys=True, default=str),
        tuple(input_ids),
        tuple(word_starts(doc.text, ranges)),  # the words players are made of
        target_text,
        contrast,
        max_new_tokens,
        chat,
    )
    if cache is not None and (hit := cache.get(key)) is not None:
        return _with_ranges(hit, ranges)

    def noted(result: AttributionResult) -> AttributionResult:
        if dropped:
            result.extras["truncated_tokens"] = dropped
        if encoded.sink:
            result.extras["sink_tokens"] = encoded.sink
        return result

    first_stage = (lambda heatmap: on_heatmap(noted(heatmap))) if on_heatmap is not None else None
    inputs = partial(
        AttributionInput,
        loaded,
        input_ids,
        ranges,
        chat=chat,
        contrast=contrast,
        text=doc.text,
        progress=_scaled(progress, 0.1, 1.0),
        cancelled=cancelled,
        timings=timings,
        on_heatmap=first_stage,
        stop=stop,
    )
    draft = request.draft[:max_new_tokens] if request.draft and target_text is None else None
    start = time.perf_counter()
    if draft and method.checks_draft:
        attempt = inputs(with_foil(loaded, draft, "draft", contrast))
        result = noted(_attribute_draft(method, attempt, request.params, max_new_tokens, _scaled(progress, 0.0, 0.1)))
    else:
        target = resolve_target(
            loaded, input_ids, target_text, contrast, max_new_tokens, _scaled(progress, 0.0, 0.1), cancelled, draft
        )
        timings["target"] = time.perf_counter() - start
        result = noted(attribute_within_memory(method, inputs(target), request.params))
    if cache is not None and "out_of_memory" not in result.extras:  # a stand-in: try the method again next time
        cache.put(key, result, owner)
    return result


def _attribute_draft(
    method: Method, inputs: AttributionInput, params: dict[str, Any] | None, max_new_tokens: int, progress: Progress
) -> AttributionResult:
    """Run a method whose first forward checks the draft target; where the draft fails, decode on from
    there and run the method again on the continuation found."""
    loaded, timings, start = inputs.loaded, inputs.timings, time.perf_counter()
    inputs.draft_check = DraftCheck(stop_ids(loaded), max_new_tokens, decision_margin(loaded.dtype))
    timings["target"] = 0.0  # checked inside the method's forward
    try:
        return attribute_within_memory(method, inputs, params)
    except DraftRejected as rejected:
        verdict, cache = rejected.verdict, rejected.cache
    ids = continue_verdict(loaded, inputs.source_ids, verdict, max_new_tokens, progress, inputs.cancelled, cache)
    target = with_foil(loaded, ids, verdict.origin, inputs.contrast)
    for name in [k for k in timings if k.startswith("attribute")]:
        del timings[name]
    timings["target"] = time.perf_counter() - start  # the rejected forward counts as the target's
    return attribute_within_memory(method, replace(inputs, target=target, draft_check=None), params)


def source_limit(loaded: LoadedModel) -> int:
    """The most prompt tokens explained: MAX_SOURCE_TOKENS, or less where the model's context is shorter."""
    context = getattr(loaded.model.config, "max_position_embeddings", None) or MAX_SOURCE_TOKENS
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


def _with_ranges(result: AttributionResult, ranges: list[tuple[int, int] | None]) -> AttributionResult:
    """A cached result re-anchored on this document's token ranges (same ids, maybe other offsets)."""
    source = [SourceToken(t.id, t.text, r) for t, r in zip(result.source, ranges)]
    return replace(result, source=source, timings={**result.timings, "cached": 1.0})


def _scaled(progress: Progress, low: float, high: float) -> Progress:
    """Map a step's own 0..1 progress into [low, high] of the whole run."""

    def report(fraction: float, message: str = "") -> None:
        progress(low + (high - low) * min(max(fraction, 0.0), 1.0), message)

    return report
