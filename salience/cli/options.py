"""What the explaining commands share: their options, a progress bar, and one explanation run with them."""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import yaml
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn

import salience.attribution as engine  # heavy names (torch) load on first use: --help stays instant
from salience.attribution import SalienceError, parse_max_memory
from salience.cli.batch import RunOptions, checked


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


def add_granularity(parser: argparse.ArgumentParser) -> None:
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


def add_run_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--method", help="attribution method (see `salience methods`)")
    parser.add_argument(
        "--model",
        help="'default', a local model directory (safetensors), a .gguf file, or a vLLM server: http://HOST:PORT/v1",
    )
    parser.add_argument("--tokenizer", metavar="DIR", help="a served model's tokenizer (a folder with tokenizer.json)")
    parser.add_argument("--served-model", metavar="NAME", help="which of the server's models (if it serves several)")
    parser.add_argument("--api-key-env", metavar="VAR", help="the environment variable holding the server's API key")
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
    loaded = engine.load_model(
        spec, args.device, args.dtype, notify=notifier(err), placement=options.placement(), server=options.server()
    )
    bar = ProgressBar(err)
    try:
        result = engine.explain(loaded, doc, request, progress=bar)
    finally:
        bar.close()
    for warning in result.warnings():
        if warning not in result.notes():  # those every output shows itself (the report, the page, the JSON)
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
        tokenizer=args.tokenizer,
        served_model=args.served_model,
        api_key_env=args.api_key_env,
    )


def notifier(err: Console) -> Callable[[str], None]:
    return lambda message: err.print(f"salience: {message}", highlight=False, markup=False, soft_wrap=True)


def write_json(where: str, data: dict[str, Any], err: Console) -> None:
    """JSON to stdout ("-") or to a file (said on stderr)."""
    document = json.dumps(data, indent=2, ensure_ascii=False)
    if where == "-":
        sys.stdout.write(document + "\n")
    else:
        Path(where).write_text(document, encoding="utf-8")
        err.print(f"salience: wrote {where}", highlight=False)
