"""`salience methods`: the attribution methods, with their cost and whether their scores are signed; with
`--model M`, which of them explain M and which one is its default."""

from __future__ import annotations

import argparse
from typing import Any

from rich.console import Console
from rich.table import Table

import salience.attribution as engine
from salience.cli.batch import RunOptions
from salience.cli.options import notifier


def add_parser(sub: Any) -> None:
    parser = sub.add_parser("methods", help="list the attribution methods (and which explain a model)")
    parser.add_argument("--model", help="also say which methods explain this model ('default', a folder, a URL)")
    parser.add_argument("--tokenizer", metavar="DIR", help="a served model's tokenizer")
    parser.add_argument("--served-model", metavar="NAME", help="which of the server's models")
    parser.add_argument("--api-key-env", metavar="VAR", help="the environment variable holding the server's API key")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace, out: Console, err: Console) -> int:
    table = Table(show_edge=False)
    classes = engine.method_classes()
    longest = max(len(cls.name) for cls in classes)
    table.add_column("method", no_wrap=True, min_width=longest)  # a name to copy: never cut
    loaded = load(args, err) if args.model else None
    columns = ("cost", "signed", "description") if loaded is None else ("cost", "this model", "description")
    for column in columns:
        table.add_column(column)
    for cls in classes:
        verdict = ("yes" if cls.signed else "no") if loaded is None else coverage(cls(), loaded)
        table.add_row(cls.name, cls.cost, verdict, cls.description)
    out.print(table)
    return 0


def load(args: argparse.Namespace, err: Console) -> engine.LoadedModel:
    options = RunOptions(
        model=args.model, tokenizer=args.tokenizer, served_model=args.served_model, api_key_env=args.api_key_env
    )
    return engine.load_model(args.model, notify=notifier(err), server=options.server())


def coverage(method: engine.Method, loaded: engine.LoadedModel) -> str:
    """Whether `method` explains `loaded`: "default", "yes", or "no" and why."""
    if loaded.served and method.needs_weights:
        return "no: needs the weights"
    if (gap := method.coverage_gap(loaded)) is not None:
        return f"no: {gap}"
    return "default" if engine.default_method(loaded) == method.name else "yes"
