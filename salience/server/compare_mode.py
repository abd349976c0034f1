"""Compare mode in the editor: the heatmap turns into the change of relevance since another version.

`salience.compare(uri, "HEAD" | "saved" | "pinned")` explains that version (git's HEAD, the file on disk,
or the result kept by `salience.pin`) and the document then shows, until `salience.compare(uri, "off")`:
each word coloured by how much its relevance rose (warm) or fell (blue) since, a hover reading "was +2.0%,
now +11.0%", a warning when the completion changed, and a code lens that says so and leads back. The
comparison is worked out once per shown result and baseline, not per request.
"""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path
from urllib.parse import unquote, urlparse

from salience.attribution import AttributionResult, Request, SalienceError, parse_prompt, read_prompt_file
from salience.revisions import git_text
from salience.server.configuration import Configuration
from salience.server.layers.compare import compared
from salience.server.layers.view import View
from salience.server.open_documents import Baseline, Documents, Output
from salience.server.runs import RunManager
from salience.views.comparison import Comparison
from salience.views.spans import ScoredSpan

AGAINST = ("HEAD", "saved", "pinned")


class CompareFeature:
    """Per document: the pinned result, the baseline compared with, and the comparison last drawn."""

    def __init__(self, documents: Documents, runs: RunManager, config: Configuration, output: Output) -> None:
        self.documents, self.runs, self.config, self.output = documents, runs, config, output
        self.pinned: dict[str, Baseline] = {}
        self.baselines: dict[str, Baseline] = {}
        self._drawn: dict[str, tuple[tuple, tuple[Comparison, list[ScoredSpan]]]] = {}

    def pin(self, uri: str) -> str:
        """Keep the current result to compare later versions with; returns what the user is told."""
        doc = self.documents[uri]
        if doc.result is None or doc.result_version != doc.version:
            raise SalienceError("no up-to-date result to pin yet: wait for the heatmap, then pin it")
        self.pinned[uri] = Baseline("pinned", self.documents.text_of(uri), doc.result)
        return f"pinned {doc.result.method}'s result explaining {doc.result.explained_text!r}"

    async def start(self, uri: str, against: str | None) -> str:
        """Compare the document with `against` (None or "off": back to the plain heatmap); returns what to tell."""
        if against in (None, "", "off"):
            self.baselines.pop(uri, None)
            self.output.published(uri, new_result=True)
            return "back to the heatmap"
        if against not in AGAINST:
            raise SalienceError(f"compare with {against!r}: expected one of {', '.join(AGAINST)} or off")
        if against == "pinned":
            if uri not in self.pinned:
                raise SalienceError("nothing pinned: run salience.pin on a result first")
            baseline = self.pinned[uri]
        else:
            text = await asyncio.to_thread(_other_text, uri, against)
            baseline = Baseline(against, text, await self.explain_version(uri, text, f"salience: {against}"))
        self.baselines[uri] = baseline
        self.output.published(uri, new_result=True)
        return f"comparing with {baseline.label}: red gained relevance, blue lost it"

    async def explain_version(self, uri: str, text: str, title: str) -> AttributionResult:
        """Explain another version of an open document with its method and target, on the worker, with
        progress; raises SalienceError (or Cancelled) rather than showing anything."""
        doc, settings = self.documents[uri], self.config.settings
        parsed = parse_prompt(text)
        if parsed.errors or parsed.is_blank:
            raise SalienceError(f"{title}: {parsed.errors[0].message if parsed.errors else 'the prompt is empty'}")
        method = doc.method or parsed.front_matter.method or settings.method
        request = Request(method=method, params=settings.method_params.get(method), target=doc.target)
        key = self.config.allowed(parsed.front_matter.model)
        notify = self.runs.notifier()
        return await self.runs.side_job(
            uri,
            title,
            lambda job, progress: self.runs.worker.explain(
                key, parsed, request, f"{uri}#{title}", progress, job.cancel.is_set, notify, self.runs.client
            ),
        )

    def drawn(self, uri: str, view: View) -> View:
        """The view in compare mode (the plain one when not comparing); the comparison is worked out once per
        result shown, spans, text, settings and baseline, not per request."""
        baseline = self.baselines.get(uri)
        if baseline is None or view.result is None:
            return view
        key = (view.result, view.spans, view.text, view.settings, baseline)
        last = self._drawn.get(uri)
        if last is None or any(a is not b for a, b in zip(last[0], key)):
            last = self._drawn[uri] = (key, compared(view, baseline))
        comparison, drawn = last[1]
        return dataclasses.replace(view, baseline=baseline, comparison=comparison, drawn=drawn)

    def forget(self, uri: str) -> None:
        """A closed document: nothing pinned or compared any more."""
        for kept in (self.pinned, self.baselines, self._drawn):
            kept.pop(uri, None)


def _other_text(uri: str, against: str) -> str:
    parsed = urlparse(uri)
    if parsed.scheme != "file":
        raise SalienceError(f"{uri} is not a file on disk: compare with a pinned result instead")
    path = Path(unquote(parsed.path))
    return git_text("HEAD", path) if against == "HEAD" else read_prompt_file(path)
