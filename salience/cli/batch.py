"""`salience attribute DIR`: every prompt file of a folder, in worker processes, resumable, with a report.

Each file's result is stored on disk under a hash of its bytes and the run's settings
(`ResultStore`), so a second run (after Ctrl-C, or after editing a few files) only explains what
changed. Methods patch model modules while they run, so parallel jobs are processes (spawned, one
model each), not threads over one model.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import salience.attribution as engine  # heavy names (torch) load on first use: --help stays instant
from salience.attribution import (
    FRONT_MATTER_SERVER,
    AttributionResult,
    Notify,
    Placement,
    PromptDocument,
    PromptError,
    Request,
    ResultStore,
    SalienceError,
    ServerOptions,
    go_offline,
    is_prompt_path,
    is_served,
    model_directory,
    model_stamp,
    parse_prompt,
    read_prompt_file,
    result_key,
)
from salience.views.html import html_page, index_page


@dataclass(frozen=True)
class RunOptions:
    """The run settings of `attribute` (CLI flags; each file's front matter fills what they leave out)."""

    model: str | None = None
    method: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    target: str | None = None
    contrast: str | None = None
    max_new_tokens: int | None = None
    device: str = "auto"
    dtype: str = "auto"
    device_map: str | None = None
    max_memory: dict[str, str] | None = None
    tokenizer: str | None = None
    served_model: str | None = None
    api_key_env: str | None = None

    def placement(self) -> Placement:
        return Placement.of(self.device_map, self.max_memory)

    def server(self) -> ServerOptions:
        return ServerOptions(self.tokenizer, self.served_model, self.api_key_env)

    def request(self) -> Request:
        return Request(
            method=self.method,
            params=self.params,
            target=self.target,
            contrast=self.contrast,
            max_new_tokens=self.max_new_tokens,
        )


def checked(text: str, options: RunOptions) -> tuple[PromptDocument, Request, str | None]:
    """Parse and check a prompt before any model loads: (document, request, model spec); raises SalienceError."""
    doc = parse_prompt(text)
    if doc.errors:
        raise PromptError(doc.errors[0].message)
    if doc.is_blank:
        raise PromptError("the prompt is empty: write some text to explain")
    request = options.request()
    engine.requested_method(doc, request)
    if is_served(doc.front_matter.model):
        raise PromptError(FRONT_MATTER_SERVER)
    return doc, request, options.model or doc.front_matter.model


@dataclass
class Outcome:
    """One file of a batch: its result (computed or stored) or the one-line error."""

    relative: str
    text: str | None = None
    result: AttributionResult | None = None
    error: str | None = None
    stored: bool = False


def prompt_files(root: Path) -> list[Path]:
    """The prompt files under `root`, sorted, skipping hidden folders (.git, .venv …)."""
    return sorted(
        p
        for p in root.rglob("*")
        if p.is_file()
        and is_prompt_path(p.name)
        and not any(part.startswith(".") for part in p.relative_to(root).parts)
    )


_loaded: dict[tuple[str | None, str, str, ServerOptions], engine.LoadedModel] = {}


def _model(spec: str | None, options: RunOptions, notify: Notify | None) -> engine.LoadedModel:
    """The model of `spec`, loaded once per process (one at a time)."""
    key = (spec, options.device, options.dtype, options.server())
    if key not in _loaded:
        _loaded.clear()
        _loaded[key] = engine.load_model(
            spec, options.device, options.dtype, notify=notify, placement=options.placement(), server=options.server()
        )
    return _loaded[key]


def explain_text(
    text: str, options: RunOptions, store: ResultStore | None, notify: Notify | None = None, progress=None
) -> tuple[PromptDocument, AttributionResult, bool]:
    """Explain a prompt's text, or take its stored result: (document, result, whether it was stored)."""
    doc, request, spec = checked(text, options)
    key = result_key(text.encode("utf-8"), **{**asdict(options), "model": model_stamp(spec)})
    if store is not None and (stored := store.get(key)) is not None:
        return doc, stored, True
    result = engine.explain(_model(spec, options, notify), doc, request, progress=progress or (lambda f, m="": None))
    if store is not None:
        store.put(key, result)
    return doc, result, False


def attribute_file(path: str, options: RunOptions, notify: Notify | None = None) -> tuple[str | None, str | None]:
    """Explain one file (in a worker process): (result JSON, None), or (None, the error in one line)."""
    try:
        doc, request, spec = checked(read_prompt_file(path), options)
        return engine.explain(_model(spec, options, notify), doc, request).to_json(), None
    except SalienceError as err:
        return None, str(err)
    except Exception as err:  # a bug on one file must not stop the batch
        return None, f"internal error: {type(err).__name__}: {err}"


def _start_worker(threads: int) -> None:
    """A worker process: offline, its share of the CPU threads, Ctrl-C left to the parent."""
    import torch

    go_offline()
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    torch.set_num_threads(threads)


Report = Callable[[Outcome, int, int], None]


def run_batch(
    root: Path,
    options: RunOptions,
    jobs: int = 1,
    store: ResultStore | None = None,
    report: Report | None = None,
    notify: Notify | None = None,
    files: list[Path] | None = None,
) -> list[Outcome]:
    """Explain every prompt file under `root` (or `files`, named relative to `root`) with `jobs` processes;
    stored results are reused."""
    files = prompt_files(root) if files is None else files
    outcomes = {p: Outcome(Path(os.path.relpath(p, root)).as_posix()) for p in files}
    report = report or (lambda outcome, done, total: None)
    todo: dict[Path, str] = {}
    specs: set[str | None] = set()
    for path in files:
        found = _lookup(path, outcomes[path], options, store)
        if found is not None:
            todo[path], spec = found
            specs.add(spec)
    if jobs > 1 and len(todo) > 1:
        _convert_once(specs, notify)
    done = len(files) - len(todo)
    for outcome in outcomes.values():
        if outcome.result is not None or outcome.error is not None:
            report(outcome, done, len(files))
    for path, (result_json, error) in _explained(list(todo), options, jobs, notify):
        _settle(outcomes[path], result_json, error, store, todo[path])
        done += 1
        report(outcomes[path], done, len(files))
    if store is not None and store.error and notify:
        notify(store.error)
    return list(outcomes.values())


def _convert_once(specs: set[str | None], notify: Notify | None) -> None:
    """Convert GGUF models here, before the workers start, so they do not each convert the same file."""
    for spec in specs:
        try:
            model_directory(spec, notify or (lambda message: None))
        except SalienceError:
            pass  # each file that names it reports the error


def _lookup(
    path: Path, outcome: Outcome, options: RunOptions, store: ResultStore | None
) -> tuple[str, str | None] | None:
    """Fill `outcome` from the store (or with the file's error); else (the key to store under, the model spec)."""
    try:
        data = path.read_bytes()
        outcome.text = read_prompt_file(path)
        _, _, spec = checked(outcome.text, options)
    except SalienceError as err:
        outcome.error = str(err)
        return None
    settings = {**asdict(options), "model": model_stamp(spec)}
    key = result_key(data, **settings)
    if store is not None and (stored := store.get(key)) is not None:
        outcome.result, outcome.stored = stored, True
        return None
    return key, spec


def _explained(paths: list[Path], options: RunOptions, jobs: int, notify: Notify | None):
    """(path, (result JSON, error)) as each finishes: in this process for one job, else in a process pool."""
    if jobs <= 1 or len(paths) <= 1:
        for path in paths:
            yield path, attribute_file(str(path), options, notify)
        return
    threads = max(1, (os.cpu_count() or 1) // jobs)
    with ProcessPoolExecutor(
        max_workers=min(jobs, len(paths)),
        mp_context=multiprocessing.get_context("spawn"),
        initializer=_start_worker,
        initargs=(threads,),
    ) as pool:
        running: dict[Future, Path] = {pool.submit(attribute_file, str(p), options): p for p in paths}
        try:
            while running:
                finished, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in finished:
                    yield running.pop(future), future.result()
        except BaseException:  # Ctrl-C: drop what has not started; stored results make the next run resume
            pool.shutdown(wait=False, cancel_futures=True)
            raise


def _settle(outcome: Outcome, result_json: str | None, error: str | None, store: ResultStore | None, key: str) -> None:
    outcome.error = error
    if result_json is not None:
        outcome.result = AttributionResult.from_json(result_json)
        if store is not None:
            store.put(key, outcome.result)


def write_report(out: Path, outcomes: list[Outcome]) -> Path:
    """`out` (the index) and one heatmap page per explained file in the folder beside it; returns the folder."""
    pages = out.with_suffix("")
    entries: list[tuple[Outcome, str | None]] = []
    for outcome in outcomes:
        link = None
        if outcome.result is not None and outcome.text is not None:
            page = pages / f"{outcome.relative}.html"
            page.parent.mkdir(parents=True, exist_ok=True)
            body_start = parse_prompt(outcome.text).body_start
            back = Path(os.path.relpath(out, page.parent)).as_posix()
            page.write_text(
                html_page(outcome.text, outcome.result, outcome.relative, body_start, back=back), encoding="utf-8"
            )
            link = page.relative_to(out.parent).as_posix()
        entries.append((outcome, link))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(index_page(f"salience report: {len(outcomes)} prompts", entries), encoding="utf-8")
    return pages
