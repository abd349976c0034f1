"""`explain()`: prompt document + model + method → `AttributionResult`. The CLI and the server call this.

A run is a line: `plan_run` decides everything once; a cached result answers at once; the first target
is found (forced, generated, or the draft that the method's first forward checks); each rung of the
memory ladder is attempted until one gives scores (a rejected draft is continued from that forward's
KV cache and the same rung tried again); `assemble` adds the run's notes to the result.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace

from salience.attribution.attempt import DraftCheck, Rejected, Scores, attempt
from salience.attribution.cache import ResultCache
from salience.attribution.compute.memory import Rung, ladder, out_of_memory_error
from salience.attribution.errors import ParameterError
from salience.attribution.methods import AttributionInput, Hooks
from salience.attribution.model import LoadedModel
from salience.attribution.plan import Plan, plan_run
from salience.attribution.progress import CancelCheck, Progress, no_cancel, no_progress
from salience.attribution.request import Request
from salience.attribution.result import AttributionResult, RunNotes, SourceToken
from salience.attribution.targets import (
    Target,
    continue_verdict,
    decision_margin,
    resolve_target,
    stop_ids,
    with_foil,
)
from salience.prompt.document import PromptDocument

Listener = Callable[[AttributionResult], None]


@dataclass(frozen=True)
class Found:
    """The target explained, and the seconds it took to find (0 for a draft the method's forward checks)."""

    target: Target
    seconds: float


def explain(
    loaded: LoadedModel,
    doc: PromptDocument,
    request: Request | None = None,
    progress: Progress = no_progress,
    cancelled: CancelCheck = no_cancel,
    cache: ResultCache | None = None,
    owner: str | None = None,
    on_heatmap: Listener | None = None,
    stop: CancelCheck | None = None,
) -> AttributionResult:
    """Attribute the document's explained target to its tokens with the requested method.

    With a `cache`, a prompt whose token ids and settings were explained before is answered from
    it, with the token ranges of this document (the same ids may sit at other file offsets).
    `on_heatmap` receives the heatmap first where the method computes it in one pass (the rows follow;
    a cancel between them stops the run after the heatmap). `stop` is checked inside a one-pass method's
    pass (default: `cancelled`, which a shared server also uses to let other runs take turns).
    """
    plan = plan_run(loaded, doc, request or Request())
    if cache is not None and (hit := cache.get(plan.key)) is not None:
        return _with_ranges(hit, plan.source.ranges)
    finding = _scaled(progress, 0.0, 0.1)
    hooks = Hooks(progress=_scaled(progress, 0.1, 1.0), cancelled=cancelled, stop=stop)
    found = first_target(plan, loaded, finding, cancelled)
    for rung in ladder(plan.method, plan.params):
        rung.announce(hooks.progress)
        started = time.perf_counter()
        outcome = attempt(rung, _inputs(plan, loaded, found, rung, hooks, on_heatmap))
        if isinstance(outcome, Rejected):  # at most once: the continuation found is no draft
            found = continued(plan, loaded, outcome, started, finding, cancelled)
            outcome = attempt(rung, _inputs(plan, loaded, found, rung, hooks, on_heatmap))
        if isinstance(outcome, Scores):
            break
    else:
        raise ParameterError(out_of_memory_error(loaded.device))
    result = assemble(plan, found, outcome.result, rung, loaded)
    if cache is not None and rung.fallback_of is None:  # a stand-in: try the method again next time
        cache.put(plan.key, result, owner)
    return result


def first_target(plan: Plan, loaded: LoadedModel, progress: Progress, cancelled: CancelCheck) -> Found:
    """Forced text, the greedy continuation, or a draft of it that the method's first forward checks."""
    spec, start = plan.target, time.perf_counter()
    if spec.draft and plan.method.checks_draft:
        return Found(with_foil(loaded, spec.draft, "draft", spec.contrast), 0.0)
    ids = plan.source.ids
    target = resolve_target(loaded, ids, spec.text, spec.contrast, spec.max_new_tokens, progress, cancelled, spec.draft)
    return Found(target, time.perf_counter() - start)


def continued(
    plan: Plan, loaded: LoadedModel, rejected: Rejected, started: float, progress: Progress, cancelled: CancelCheck
) -> Found:
    """The greedy continuation after a rejected draft, decoded on from the forward that rejected it (whose
    seconds count as the target's)."""
    spec, verdict = plan.target, rejected.verdict
    ids = continue_verdict(loaded, plan.source.ids, verdict, spec.max_new_tokens, progress, cancelled, rejected.cache)
    return Found(with_foil(loaded, ids, verdict.origin, spec.contrast), time.perf_counter() - started)


def assemble(plan: Plan, found: Found, result: AttributionResult, rung: Rung, loaded: LoadedModel) -> AttributionResult:
    """The method's result with the run's timings and notes (how the target was found, truncation, the sink,
    memory retries, a stand-in method)."""
    notes = RunNotes(
        target="draft verified" if found.target.draft else found.target.origin,
        memory_retries=rung.retries,
        out_of_memory=rung.warning(loaded.device),
        truncated_tokens=plan.source.dropped,
        sink_tokens=plan.source.sink,
        fallback=plan.stand_in,
    )
    timings = {"tokenize": plan.seconds, "target": found.seconds, **result.timings}
    return replace(result, timings=timings, extras={**result.extras, **notes.extras()})


def _inputs(
    plan: Plan, loaded: LoadedModel, found: Found, rung: Rung, hooks: Hooks, on_heatmap: Listener | None
) -> AttributionInput:
    """What the rung's method explains, with fresh timings, the draft check where the target is a draft, and
    the first stage's listener receiving assembled results."""
    draft = found.target.draft
    check = DraftCheck(stop_ids(loaded), plan.target.max_new_tokens, decision_margin(loaded.dtype)) if draft else None
    listener = (lambda stage: on_heatmap(assemble(plan, found, stage, rung, loaded))) if on_heatmap else None
    source = plan.source
    return AttributionInput(
        loaded,
        source.ids,
        source.ranges,
        found.target,
        chat=plan.chat,
        contrast=plan.target.contrast,
        text=source.text,
        hooks=replace(hooks, timings={}, on_heatmap=listener, draft_check=check),
    )


def _with_ranges(result: AttributionResult, ranges: list[tuple[int, int] | None]) -> AttributionResult:
    """A cached result re-anchored on this document's token ranges (same ids, maybe other offsets)."""
    source = [SourceToken(t.id, t.text, r) for t, r in zip(result.source, ranges)]
    return replace(result, source=source, timings={**result.timings, "cached": 1.0})


def _scaled(progress: Progress, low: float, high: float) -> Progress:
    """Map a step's own 0..1 progress into [low, high] of the whole run."""

    def report(fraction: float, message: str = "") -> None:
        progress(low + (high - low) * min(max(fraction, 0.0), 1.0), message)

    return report
