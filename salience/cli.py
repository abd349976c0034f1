"""`salience attribute | methods | demo`: argument parsing and output over the engine's calls."""

from __future__ import annotations

import argparse
import importlib.resources
import json
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

import salience.attribution as engine  # heavy names (torch) load on first use: --help stays instant
from salience.attribution import (
    PROMPT_SUFFIXES,
    PromptDocument,
    ResultStore,
    SalienceError,
    go_offline,
    parse_max_memory,
    read_prompt_file,
)
from salience.batch import RunOptions, checked, prompt_files, run_batch, write_report
from salience.views.html import html_page
from salience.views.reading import Reading, word_view
from salience.views.section_shares import section_view, sections_of
from salience.views.terminal import batch_table, terminal_report

DEMO_PROMPT = "door-codes.prompt"


class ProgressBar:
    """A progress bar on stderr that appears only once work has run for `delay` seconds (a short run shows none)."""

    def __init__(self, console: Console, delay: float = 2.0) -> None:
        self.console, self.delay, self.started = console, delay, time.monotonic()
        self.bar: Progress | None = None
        self.task: Any = None

    def __call__(self, fraction: float, message: str = "") -> None:
        if self.bar is None and time.monotonic() - self.started >= self.delay:
            self.bar = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                TaskProgressColumn(),
                TimeElapsedColumn(),
                console=self.console,
                transient=True,
            )
            self.bar.start()
            self.task = self.bar.add_task(message or "working", total=1.0)
        if self.bar is not None:
            self.bar.update(self.task, completed=fraction, description=message or "working")

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="salience", description="Which parts of a prompt does the model rely on?")
    sub = parser.add_subparsers(dest="command", required=True)
    attribute = sub.add_parser("attribute", help="explain a prompt file (or every one in a folder) and show a heatmap")
    attribute.add_argument("file", type=Path, help="a prompt file, or a folder: every prompt file under it")
    _add_run_options(attribute)
    attribute.add_argument(
        "--json",
        nargs="?",
        const="-",
        metavar="OUT",
        help="write the full result as JSON (to stdout when no file is given)",
    )
    attribute.add_argument("--html", metavar="OUT", type=Path, help="write a self-contained heatmap page")
    _add_granularity(attribute)
    attribute.add_argument(
        "--jobs", type=int, default=1, metavar="N", help="for a folder: explain N files at once, in N processes"
    )
    attribute.add_argument(
        "--report",
        metavar="OUT.html",
        type=Path,
        help="for a folder: write an index page, and a heatmap page per file in OUT/",
    )
    faith = sub.add_parser("faithfulness", help="explain a prompt file and measure how faithful the scores are")
    faith.add_argument("file", type=Path)
    _add_run_options(faith)
    faith.add_argument("--samples", type=int, default=8, help="Bernoulli mask samples for Soft-NS/NC")
    faith.add_argument("--points", type=int, default=10, help="removal steps of the MoRF/LeRF curves")
    faith.add_argument("--seed", type=int, default=0)
    faith.add_argument("--json", action="store_true", help="print the figures as JSON")
    check = sub.add_parser("check", help="check the expect: block of prompt files (exit 1 when one fails)")
    check.add_argument("paths", type=Path, nargs="+", metavar="PATH", help="prompt files, or folders of them")
    _add_run_options(check)
    check.add_argument("--junit", type=Path, metavar="OUT.xml", help="also write the verdicts as JUnit XML")
    diff = sub.add_parser("diff", help="what an edit changed: relevance before and after, word by word")
    diff.add_argument(
        "versions",
        nargs="+",
        metavar="VERSION",
        help="OLD NEW (each a file or REV:path, read with git), or one PATH: HEAD:PATH against the working file",
    )
    _add_run_options(diff)
    diff.add_argument("--json", nargs="?", const="-", metavar="OUT", help="write the comparison as JSON")
    diff.add_argument("--html", metavar="OUT", type=Path, help="write the comparison as a page")
    sub.add_parser("methods", help="list the attribution methods")
    serve = sub.add_parser("serve", help="run the language server (stdio unless --tcp or --ws)")
    transport = serve.add_mutually_exclusive_group()
    transport.add_argument("--stdio", action="store_true", help="talk LSP over stdin/stdout (the default)")
    where = "on 127.0.0.1, this machine only, unless HOST is given"
    transport.add_argument(
        "--tcp", metavar="[HOST:]PORT", help=f"listen for editors over TCP, sharing one model ({where})"
    )
    transport.add_argument("--ws", metavar="[HOST:]PORT", help=f"listen for clients over WebSocket ({where})")
    serve.add_argument("--log-file", help="write the server log here (stdout belongs to LSP)")
    demo = sub.add_parser("demo", help="explain the example prompt shipped with salience")
    _add_run_options(demo)
    _add_granularity(demo)
    return parser


def _add_granularity(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--granularity",
        choices=("word", "token"),
        default="word",
        help="score the file's words (the sum of their tokens', the default) or model tokens",
    )
    parser.add_argument(
        "--by",
        choices=("word", "section"),
        default="word",
        help="below the heatmap, a table of the top words (the default) or of the prompt's sections",
    )


def _add_run_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--method", help="attribution method (see `salience methods`)")
    parser.add_argument("--model", help="'default', a local model directory (safetensors) or a .gguf file")
    parser.add_argument("--target", help="explain this text instead of the model's continuation")
    parser.add_argument("--contrast", help="explain the target rather than this foil")
    parser.add_argument("--max-new-tokens", type=int, help="length of the explained continuation")
    parser.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="method parameter, e.g. --param steps=50 (repeatable)",
    )
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps")
    parser.add_argument("--dtype", default="auto", help="auto, float32, bfloat16 or float16")
    parser.add_argument(
        "--device-map",
        metavar="MAP",
        help="spread the model over devices (accelerate): auto, "
        "balanced, sequential, or JSON mapping module names to devices (0, 'cpu', 'disk')",
    )
    parser.add_argument(
        "--max-memory",
        metavar="DEV=SIZE,…",
        help="with --device-map: memory per device, e.g. 0=20GiB,cpu=64GiB (what does not fit is offloaded to disk)",
    )


def parse_params(pairs: Sequence[str]) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise SalienceError(f"--param {pair!r}: expected KEY=VALUE")
        params[key.strip()] = yaml.safe_load(value)
    return params


def run_attribution(text: str, args: argparse.Namespace, err: Console, keep_model: bool = False) -> tuple:
    """Parse, check and explain a prompt text with the options of `attribute` or `demo`.

    Returns (document, result), and the loaded model too with `keep_model`.
    """
    options = run_options(args)
    doc, request, spec = checked(text, options)
    for problem in doc.problems:
        if problem.severity == "warning":
            err.print(f"[yellow]warning:[/] {problem.message}", highlight=False)
    loaded = engine.load_model(spec, args.device, args.dtype, notify=notifier(err), placement=options.placement())
    bar = ProgressBar(err)
    try:
        result = engine.explain(loaded, doc, request, progress=bar)
    finally:
        bar.close()
    for warning in result.warnings():
        err.print(f"[yellow]warning:[/] {warning}", highlight=False)
    return (doc, result, loaded) if keep_model else (doc, result)


def run_options(args: argparse.Namespace) -> RunOptions:
    return RunOptions(
        model=args.model,
        method=args.method,
        params=parse_params(args.param),
        target=args.target,
        contrast=args.contrast,
        max_new_tokens=args.max_new_tokens,
        device=args.device,
        dtype=args.dtype,
        device_map=args.device_map,
        max_memory=parse_max_memory(args.max_memory) if args.max_memory else None,
    )


def notifier(err: Console):
    return lambda message: err.print(f"salience: {message}", highlight=False, markup=False, soft_wrap=True)


def cmd_attribute(args: argparse.Namespace, out: Console, err: Console) -> int:
    if args.file.is_dir():
        return cmd_batch(args, out, err)
    if args.report or args.jobs != 1:
        raise SalienceError("--report and --jobs take a folder of prompt files")
    text = read_prompt_file(args.file)
    doc, result = run_attribution(text, args, err)
    body_start, granularity = doc.body_start, args.granularity
    if args.html:
        args.html.write_text(html_page(text, result, args.file.name, body_start, granularity), encoding="utf-8")
        err.print(f"salience: wrote {args.html}", highlight=False)
    if args.json:
        document = json.dumps(json_view(text, doc, result), indent=2, ensure_ascii=False)
        if args.json == "-":
            sys.stdout.write(document + "\n")
            return 0
        Path(args.json).write_text(document, encoding="utf-8")
        err.print(f"salience: wrote {args.json}", highlight=False)
    out.print(terminal_report(text, result, body_start, granularity, args.by))
    return 0


def json_view(text: str, doc: PromptDocument, result: engine.AttributionResult) -> dict[str, Any]:
    """What `--json` writes: the result (the token matrix), the file's words and its sections."""
    sections = section_view(sections_of(Reading.of(result, text), doc), text)
    return {**result.to_dict(), "words": word_view(result, text), "sections": sections}


def cmd_batch(args: argparse.Namespace, out: Console, err: Console) -> int:
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


def cmd_faithfulness(args: argparse.Namespace, out: Console, err: Console) -> int:
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


def cmd_methods(out: Console) -> int:
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


LOOPBACK = ("127.0.0.1", "localhost", "::1", "[::1]")


def cmd_serve(args: argparse.Namespace, err: Console) -> int:
    addresses = (("tcp", args.tcp), ("ws", args.ws))
    listen = [(flag, *listen_address(flag, address)) for flag, address in addresses if address]
    from salience.server.start import serve  # after the address is checked: a typo is answered at once

    for flag, host, port in listen:
        err.print(listening_notice(flag, host, port), highlight=False, markup=False, soft_wrap=True)
        return serve(flag, f"{host}:{port}", args.log_file)
    return serve("stdio", None, args.log_file)


def listen_address(flag: str, address: str) -> tuple[str, int]:
    """PORT (on 127.0.0.1: this machine only) or HOST:PORT."""
    host, sep, port = address.rpartition(":")
    if not port.isdigit() or (sep and not host) or not 0 < int(port) < 65536:
        raise SalienceError(f"--{flag} {address!r}: expected PORT or HOST:PORT, e.g. 2087 or 127.0.0.1:2087")
    return (host if sep else "127.0.0.1"), int(port)


def listening_notice(flag: str, host: str, port: int) -> str:
    """What `serve` says on stderr: where it listens, and who can reach it."""
    where = f"salience: listening for LSP over {'WebSocket' if flag == 'ws' else 'TCP'} on {host}:{port}"
    if host in LOOPBACK:
        return f"{where} (this machine only; pass HOST:PORT to listen elsewhere)"
    return (
        f"{where}. Warning: this address may be reachable from the network, and whoever connects can run "
        "models on this machine and have it read files: use 127.0.0.1 unless the network is trusted"
    )


def cmd_demo(args: argparse.Namespace, out: Console, err: Console) -> int:
    text = importlib.resources.files("salience.examples").joinpath(DEMO_PROMPT).read_text(encoding="utf-8")
    out.print(f"[bold]salience demo[/]: {DEMO_PROMPT}, explained with the embedded SmolLM2-135M-Instruct\n")
    doc, result = run_attribution(text, args, err)
    out.print(terminal_report(text, result, doc.body_start, args.granularity, args.by))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    go_offline()  # models come from local files: nothing in this process may reach a model hub
    out, err = Console(), Console(stderr=True)
    try:
        if args.command == "attribute":
            return cmd_attribute(args, out, err)
        if args.command == "methods":
            return cmd_methods(out)
        if args.command == "serve":
            return cmd_serve(args, err)
        if args.command == "faithfulness":
            return cmd_faithfulness(args, out, err)
        if args.command == "diff":
            from salience.diff import cmd_diff

            return cmd_diff(args, run_options(args), out, err, notifier(err))
        if args.command == "check":
            from salience.check import cmd_check

            return cmd_check(args, run_options(args), out, err, notifier(err))
        return cmd_demo(args, out, err)
    except SalienceError as error:
        err.print(f"salience: error: {error}", highlight=False, markup=False, soft_wrap=True)
        return 1
    except KeyboardInterrupt:
        err.print("salience: interrupted", highlight=False)
        return 130
    except Exception as error:  # a bug: one line for the user, the traceback on request
        if os.environ.get("SALIENCE_DEBUG"):
            raise
        err.print(
            f"salience: internal error: {type(error).__name__}: {error}. This is a bug in salience: please "
            "report it with the input (SALIENCE_DEBUG=1 shows the traceback)",
            highlight=False,
            markup=False,
            soft_wrap=True,
        )
        return 2


if __name__ == "__main__":
    sys.exit(main())
