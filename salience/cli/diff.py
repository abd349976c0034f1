"""`salience diff OLD NEW` (or `salience diff PATH`: HEAD:PATH against the working file): what an edit changed
in what the answer relies on. Both versions are explained with one model (stored results reused)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from rich.console import Console

from salience.attribution import ResultStore
from salience.cli.batch import explain_text
from salience.cli.options import add_run_options, notifier, run_options, write_json
from salience.revisions import read_version, sides
from salience.views.comparison import compare, comparison_view
from salience.views.html import diff_page
from salience.views.reading import Reading
from salience.views.section_shares import sections_of
from salience.views.terminal import diff_report


def add_parser(sub: Any) -> None:
    parser = sub.add_parser("diff", help="what an edit changed: relevance before and after, word by word")
    parser.add_argument(
        "versions",
        nargs="+",
        metavar="VERSION",
        help="OLD NEW (each a file or REV:path, read with git), or one PATH: HEAD:PATH against the working file",
    )
    add_run_options(parser)
    parser.add_argument("--json", nargs="?", const="-", metavar="OUT", help="write the comparison as JSON")
    parser.add_argument("--html", metavar="OUT", type=Path, help="write the comparison as a page")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace, out: Console, err: Console) -> int:
    options, notify = run_options(args), notifier(err)
    old_spec, new_spec = sides(args.versions)
    old, new = read_version(old_spec), read_version(new_spec)  # both read before any model loads
    store = ResultStore()
    readings = []
    for version in (old, new):
        doc, result, stored = explain_text(version.text, options, store, notify)
        reading = Reading.of(result, version.text)
        readings.append((doc, reading))
        err.print(f"salience: {version.label}: {'stored result' if stored else 'explained'}", highlight=False)
    (old_doc, old_reading), (new_doc, new_reading) = readings
    comparison = compare(old_reading, new_reading, sections_of(old_reading, old_doc), sections_of(new_reading, new_doc))
    title = f"{old.label} → {new.label}"
    if args.html:
        args.html.write_text(diff_page(comparison, new_reading, new_doc.body_start, title), encoding="utf-8")
        err.print(f"salience: wrote {args.html}", highlight=False)
    if args.json:
        write_json(args.json, {"old": old.label, "new": new.label, **comparison_view(comparison)}, err)
        return 0
    out.print(f"[bold]{title}[/] · {new_reading.result.method}", highlight=False)
    out.print(diff_report(comparison, new_reading, new_doc.body_start))
    return 0
