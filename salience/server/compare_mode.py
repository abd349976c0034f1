"""Compare mode in the editor: the heatmap turns into the change of relevance since another version.

`salience.compare(uri, "HEAD" | "saved" | "pinned")` explains that version (git's HEAD, the file on disk,
or the result kept by `salience.pin`) and the document then shows, until `salience.compare(uri, "off")`:
each word coloured by how much its relevance rose (warm) or fell (blue) since, a hover reading "was +2.0%,
now +11.0%", a warning when the completion changed, and a code lens that says so and leads back.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from urllib.parse import unquote, urlparse

from salience.attribution import SalienceError, read_prompt_file
from salience.revisions import git_text
from salience.server.documents import Baseline
from salience.server.scheduler import Scheduler

AGAINST = ("HEAD", "saved", "pinned")


def pin(scheduler: Scheduler, uri: str) -> str:
    """Keep the current result to compare later versions with; returns what the user is told."""
    doc = scheduler.documents[uri]
    if doc.result is None or doc.result_version != doc.version:
        raise SalienceError("no up-to-date result to pin yet: wait for the heatmap, then pin it")
    doc.pinned = Baseline("pinned", doc.text, doc.result)
    return f"pinned {doc.result.method}'s result explaining {doc.result.explained_text!r}"


async def start(scheduler: Scheduler, uri: str, against: str | None) -> str:
    """Compare the document with `against` (None or "off": back to the plain heatmap); returns what to tell."""
    doc = scheduler.documents[uri]
    if against in (None, "", "off"):
        doc.baseline = None
        scheduler.output.published(uri, new_result=True)
        return "back to the heatmap"
    if against not in AGAINST:
        raise SalienceError(f"compare with {against!r}: expected one of {', '.join(AGAINST)} or off")
    if against == "pinned":
        if doc.pinned is None:
            raise SalienceError("nothing pinned: run salience.pin on a result first")
        baseline = doc.pinned
    else:
        text = await asyncio.to_thread(_other_text, uri, against)
        baseline = Baseline(against, text, await scheduler.explain_version(uri, text, f"salience: {against}"))
    doc.baseline = baseline
    scheduler.output.published(uri, new_result=True)
    return f"comparing with {baseline.label}: red gained relevance, blue lost it"


def _other_text(uri: str, against: str) -> str:
    parsed = urlparse(uri)
    if parsed.scheme != "file":
        raise SalienceError(f"{uri} is not a file on disk: compare with a pinned result instead")
    path = Path(unquote(parsed.path))
    return git_text("HEAD", path) if against == "HEAD" else read_prompt_file(path)
