"""`salience attribute FILE`: a prompt file explained, as a terminal heatmap, JSON or a page; `salience
attribute DIR`: every prompt file of a folder (`batch`), with a table and a report."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from rich.console import Console

import salience.attribution as engine
from salience.attribution import PROMPT_SUFFIXES, PromptDocument, ResultStore, SalienceError, read_prompt_file
from salience.cli.batch import prompt_files, run_batch, write_report
from salience.cli.options import (
    ProgressBar,
    add_granularity,
    add_run_options,
    notifier,
    run_attribution,
    run_options,
    write_json,
)
from salience.views.html import html_page
from salience.views.reading import Reading, word_view
from salience.views.section_shares import section_view, sections_of
from salience.views.terminal import batch_table, terminal_report


def add_parser(sub: Any) -> None:
    parser = sub.add_parser("attribute", help="explain a prompt file (or every one in a folder) and show a heatmap")
    parser.add_argument("file", type=Path, help="a prompt file, or a folder: every prompt file under it")
    add_run_options(parser)
    parser.add_argument(
        "--json",
        nargs="?",
        const="-",
        metavar="OUT",
        help="write the full result as JSON (to stdout when no file is given)",
    )
    parser.add_argument("--html", metavar="OUT", type=Path, help="write a self-contained heatmap page")
    add_granularity(parser)
    parser.add_argument(
        "--jobs", type=int, default=1, metavar="N", help="for a folder: explain N files at once, in N processes"
    )
    parser.add_argument(
        "--report",
        metavar="OUT.html",
        type=Path,
        help="for a folder: write an index page, and a heatmap page per file in OUT/",
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace, out: Console, err: Console) -> int:
    if args.file.is_dir():
        return run_folder(args, out, err)
    if args.report or args.jobs != 1:
        raise SalienceError("--report and --jobs take a folder of prompt files")
    text = read_prompt_file(args.file)
    doc, result = run_attribution(text, args, err)
    body_start, granularity = doc.body_start, args.granularity
    if args.html:
        args.html.write_text(html_page(text, result, args.file.name, body_start, granularity), encoding="utf-8")
        err.print(f"salience: wrote {args.html}", highlight=False)
    if args.json:
        write_json(args.json, json_view(text, doc, result), err)
        if args.json == "-":
            return 0
    out.print(terminal_report(text, result, body_start, granularity, args.by))
    return 0


def json_view(text: str, doc: PromptDocument, result: engine.AttributionResult) -> dict[str, Any]:
    """What `--json` writes: the result (the token matrix), the file's words and its sections."""
    sections = section_view(sections_of(Reading.of(result, text), doc), text)
    return {**result.to_dict(), "notes": result.notes(), "words": word_view(result, text), "sections": sections}


def run_folder(args: argparse.Namespace, out: Console, err: Console) -> int:
    """Every prompt file under a folder; results stored by content hash, so a second run resumes."""
    if args.json or args.html:
        raise SalienceError("--json and --html take one prompt file; for a folder, use --report OUT.html")
    if args.jobs < 1:
        raise SalienceError("--jobs must be at least 1")
    if not prompt_files(args.file):
        raise SalienceError(f"{args.file}: no prompt files ({', '.join(PROMPT_SUFFIXES)}) in this folder")
    bar = ProgressBar(err)
    try:
        outcomes = run_batch(
            args.file,
            run_options(args),
            args.jobs,
            ResultStore(),
            lambda outcome, done, total: bar(done / total, f"{done}/{total} {outcome.relative}"),
            notifier(err),
        )
    finally:
        bar.close()
    out.print(batch_table(outcomes))
    if args.report:
        pages = write_report(args.report, outcomes)
        err.print(f"salience: wrote {args.report} (pages in {pages})", highlight=False, markup=False, soft_wrap=True)
    failed = sum(o.result is None for o in outcomes)
    stored = sum(o.stored for o in outcomes)
    out.print(
        f"{len(outcomes)} prompts: {len(outcomes) - failed - stored} explained, {stored} stored by an "
        f"earlier run, {failed} failed"
    )
    return 1 if failed else 0
