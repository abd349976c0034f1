"""`salience demo`: the example prompt shipped with salience, explained with the embedded model."""

from __future__ import annotations

import argparse
import importlib.resources
from typing import Any

from rich.console import Console

from salience.cli.options import add_granularity, add_run_options, run_attribution
from salience.views.terminal import terminal_report

DEMO_PROMPT = "door-codes.prompt"


def add_parser(sub: Any) -> None:
    parser = sub.add_parser("demo", help="explain the example prompt shipped with salience")
    add_run_options(parser)
    add_granularity(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace, out: Console, err: Console) -> int:
    text = importlib.resources.files("salience.examples").joinpath(DEMO_PROMPT).read_text(encoding="utf-8")
    out.print(f"[bold]salience demo[/]: {DEMO_PROMPT}, explained with the embedded SmolLM2-135M-Instruct\n")
    doc, result = run_attribution(text, args, err)
    out.print(terminal_report(text, result, doc.body_start, args.granularity, args.by))
    return 0
