"""`salience check PATH...`: the `expect:` blocks of prompt files, checked against fresh (or stored) results.

A file passes when every expectation holds: its answer (`contains`, `not_contains`, `equals`) and each
named section's share of |relevance| (`min_share`, `max_share`). Results are stored by the file's bytes
and the run's settings (`ResultStore`), so an unchanged file is not explained again. Exit status 1 on any
failure or error, so a CI step fails; `--junit OUT` writes the verdicts as JUnit XML for CI to show.
"""

from __future__ import annotations

import argparse
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from salience.attribution import PromptDocument, ResultStore, SalienceError, parse_prompt, read_prompt_file
from salience.cli.batch import Outcome, RunOptions, prompt_files, run_batch
from salience.cli.options import add_run_options, notifier, run_options
from salience.prompt.sections import find_sections
from salience.views.reading import Reading
from salience.views.section_shares import section_reading
from salience.views.verdicts import Verdict, missing_sections, verdicts


@dataclass
class FileCheck:
    """One file's verdicts, or why it could not be checked (`error`), or that it has no `expect:`."""

    relative: str
    verdicts: list[Verdict] = field(default_factory=list)
    error: str | None = None
    skipped: bool = False
    stored: bool = False

    @property
    def passed(self) -> bool:
        return self.error is None and all(v.passed for v in self.verdicts)


def collect(paths: list[Path]) -> list[Path]:
    """The prompt files named, and those under the folders named, each once, in the order given."""
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found += prompt_files(path)
        elif path.is_file():
            found.append(path)
        else:
            raise SalienceError(f"{path}: no such file or folder")
    return list(dict.fromkeys(p.resolve() for p in found))


def check_files(paths: list[Path], options: RunOptions, store: ResultStore | None, notify=None) -> list[FileCheck]:
    """Parse every file, explain those with a valid `expect:` (stored results reused), and check them."""
    root = Path.cwd()
    checks: dict[Path, FileCheck] = {}
    to_run: list[Path] = []
    parsed: dict[Path, PromptDocument] = {}
    for path in collect(paths):
        check = checks[path] = FileCheck(_relative(path, root))
        try:
            doc = parsed[path] = parse_prompt(read_prompt_file(path))
        except SalienceError as err:
            check.error = str(err)
            continue
        problem = next((p.message for p in doc.errors), None)
        expect = doc.front_matter.expect
        if problem is None and expect is not None:
            problem = next(iter(missing_sections(expect, find_sections(doc)).values()), None)
        if problem is not None:
            check.error = problem
        elif expect is None:
            check.skipped = True
        else:
            to_run.append(path)
    if to_run:
        for outcome in run_batch(root, options, 1, store, notify=notify, files=to_run):
            path = (root / outcome.relative).resolve()
            _settle(checks[path], outcome, parsed[path])
    return list(checks.values())


def _settle(check: FileCheck, outcome: Outcome, doc: PromptDocument) -> None:
    if outcome.result is None or outcome.text is None or doc.front_matter.expect is None:
        check.error = outcome.error or "not explained"
        return
    reading = Reading.of(outcome.result, outcome.text)
    shares = section_reading(reading, find_sections(doc))
    check.verdicts, check.stored = verdicts(doc.front_matter.expect, outcome.result, shares), outcome.stored


def _relative(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return path.as_posix()


def check_table(checks: list[FileCheck]) -> Table:
    """Each file, then a row per expectation (pass or FAIL, with what was found), or why it was not checked."""
    table = Table(show_edge=False, show_header=False, box=None, padding=(0, 1))
    for column in ("mark", "expectation", "found"):
        table.add_column(column, overflow="fold", no_wrap=column == "mark")
    for check in checks:
        state = "stored result" if check.stored else "skipped: no expect: block" if check.skipped else ""
        table.add_row("", Text(check.relative, style="bold"), Text(state, style="dim"))
        if check.error is not None:
            table.add_row(Text("ERROR", style="bold red"), "could not be checked", check.error)
        for verdict in check.verdicts:
            mark = Text("pass", style="green") if verdict.passed else Text("FAIL", style="bold red")
            table.add_row(mark, verdict.name, verdict.found)
    return table


def summary(checks: list[FileCheck]) -> str:
    failed = sum(not c.passed for c in checks)
    checked = sum(not c.skipped and c.error is None for c in checks)
    stored = sum(c.stored for c in checks)
    expectations = sum(len(c.verdicts) for c in checks)
    failures = sum(not v.passed for c in checks for v in c.verdicts)
    return (
        f"{len(checks)} files: {checked} checked ({stored} from stored results), "
        f"{sum(c.skipped for c in checks)} without expect:, {sum(c.error is not None for c in checks)} errors; "
        f"{expectations - failures} of {expectations} expectations hold · {'FAILED' if failed else 'passed'}"
    )


def junit_xml(checks: list[FileCheck]) -> str:
    """The verdicts as JUnit XML: a test case per expectation (a file that could not be checked: one error)."""
    suite = ET.Element("testsuite", name="salience check")
    counts = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    for check in checks:
        if check.error is not None or check.skipped:
            case = ET.SubElement(suite, "testcase", classname=check.relative, name="expect")
            kind = "error" if check.error is not None else "skipped"
            ET.SubElement(case, kind, message=check.error or "no expect: block")
            counts["tests"] += 1
            counts["errors" if kind == "error" else "skipped"] += 1
        for verdict in check.verdicts:
            case = ET.SubElement(suite, "testcase", classname=check.relative, name=verdict.name)
            counts["tests"] += 1
            if not verdict.passed:
                ET.SubElement(case, "failure", message=verdict.found).text = f"{verdict.name}: {verdict.found}"
                counts["failures"] += 1
            else:
                ET.SubElement(case, "system-out").text = verdict.found
    suite.attrib.update({k: str(v) for k, v in counts.items()})
    ET.indent(suite)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(suite, encoding="unicode") + "\n"


def add_parser(sub: Any) -> None:
    parser = sub.add_parser("check", help="check the expect: block of prompt files (exit 1 when one fails)")
    parser.add_argument("paths", type=Path, nargs="+", metavar="PATH", help="prompt files, or folders of them")
    add_run_options(parser)
    parser.add_argument("--junit", type=Path, metavar="OUT.xml", help="also write the verdicts as JUnit XML")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace, out: Console, err: Console) -> int:
    checks = check_files(args.paths, run_options(args), ResultStore(), notifier(err))
    if not checks:
        raise SalienceError("no prompt files to check")
    out.print(check_table(checks))
    out.print(summary(checks), highlight=False)
    if args.junit:
        args.junit.parent.mkdir(parents=True, exist_ok=True)
        args.junit.write_text(junit_xml(checks), encoding="utf-8")
        err.print(f"salience: wrote {args.junit}", highlight=False, markup=False)
    return 0 if all(c.passed for c in checks) else 1
