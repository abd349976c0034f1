"""`salience methods`: the attribution methods, with their cost and whether their scores are signed."""

from __future__ import annotations

import argparse
from typing import Any

from rich.console import Console
from rich.table import Table

import salience.attribution as engine


def add_parser(sub: Any) -> None:
    sub.add_parser("methods", help="list the attribution methods").set_defaults(run=run)


def run(args: argparse.Namespace, out: Console, err: Console) -> int:
    table = Table(show_edge=False)
    classes = engine.method_classes()
    longest = max(len(cls.name) for cls in classes)
    table.add_column("method", no_wrap=True, min_width=longest)  # a name to copy: never cut
    for column in ("cost", "signed", "description"):
        table.add_column(column)
    for cls in classes:
        table.add_row(cls.name, cls.cost, "yes" if cls.signed else "no", cls.description)
    out.print(table)
    return 0
