"""`salience faithfulness FILE`: a prompt explained, then how faithful its scores are (Soft-NS/NC, MoRF/LeRF
against random placements), as a table or JSON."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from salience.attribution import SalienceError, read_prompt_file
from salience.cli.options import ProgressBar, add_run_options, run_attribution


def add_parser(sub: Any) -> None:
    parser = sub.add_parser("faithfulness", help="explain a prompt file and measure how faithful the scores are")
    parser.add_argument("file", type=Path)
    add_run_options(parser)
    parser.add_argument("--samples", type=int, default=8, help="Bernoulli mask samples for Soft-NS/NC")
    parser.add_argument("--points", type=int, default=10, help="removal steps of the MoRF/LeRF curves")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace, out: Console, err: Console) -> int:
    from salience.evaluation.faithfulness import FIXED_RATE, faithfulness

    if args.samples < 1 or args.points < 2:
        raise SalienceError("--samples must be at least 1 and --points at least 2")
    text = read_prompt_file(args.file)
    _, result, loaded = run_attribution(text, args, err, keep_model=True)
    bar = ProgressBar(err)
    try:
        figures = faithfulness(loaded, result, samples=args.samples, points=args.points, seed=args.seed, progress=bar)
    finally:
        bar.close()
    if args.json:
        sys.stdout.write(json.dumps({"method": result.method, **figures.to_dict()}, indent=2) + "\n")
        return 0
    out.print(f"{args.file.name}: {result.method} explaining {result.explained_text!r}")
    table = Table(show_edge=False)
    for column in ("metric", "method", "random placement", "log ratio", "better when"):
        table.add_column(column)
    f, rate = figures, f"{100 * FIXED_RATE:.0f}%"
    for metric, ours, random, ratio, better in (
        ("Soft-NC", f.soft_nc, f.random_nc, f.nc_log_ratio, "ratio > 0"),
        ("Soft-NS", f.soft_ns, f.random_ns, f.ns_log_ratio, "ratio < 0"),
        (f"Soft-NC, {rate} dropped", f.fixed_nc, f.random_fixed_nc, f.fixed_nc_log_ratio, "ratio > 0"),
        (f"Soft-NS, {rate} kept", f.fixed_ns, f.random_fixed_ns, f.fixed_ns_log_ratio, "ratio < 0"),
    ):
        table.add_row(metric, f"{ours:.4f}", f"{random:.4f}", f"{ratio:+.2f}", better)
    table.add_row("MoRF/LeRF area", f"{figures.area:.3f}", f"{figures.random_area:.3f}", "", "larger")
    out.print(table)
    out.print(figures.summary())
    return 0
