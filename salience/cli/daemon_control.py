"""`salience daemon run | status | stop`: the per-user daemon that `salience serve --daemon` forwards to."""

from __future__ import annotations

import argparse
import json
import os
import signal
import time
from typing import Any

from rich.console import Console

from salience.server.daemon import IDLE_TIMEOUT_S, log_path, socket_path, status_path


def add_parser(sub: Any) -> None:
    parser = sub.add_parser("daemon", help="the per-user daemon editors share (run, status, stop)")
    parser.add_argument("action", choices=("run", "status", "stop"))
    parser.add_argument(
        "--idle-timeout",
        type=float,
        default=IDLE_TIMEOUT_S,
        metavar="S",
        help="run: exit after S seconds with no editor",
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace, out: Console, err: Console) -> int:
    if args.action == "run":
        from salience.server.daemon import run_daemon

        return run_daemon(args.idle_timeout)
    status = read_status()
    if status is None:
        out.print("salience daemon: not running", highlight=False)
        return 0 if args.action == "stop" else 3
    if args.action == "stop":
        os.kill(status["pid"], signal.SIGTERM)
        out.print(f"salience daemon: stopped pid {status['pid']}", highlight=False)
        return 0
    uptime = time.time() - status["started"]
    out.print(
        f"salience daemon {status['version']}: pid {status['pid']}, up {uptime:.0f} s, {status['clients']} editor(s), "
        f"socket {socket_path()}, log {log_path()}",
        highlight=False,
        soft_wrap=True,
    )
    return 0


def read_status() -> dict[str, Any] | None:
    """The running daemon's record, or None (no record, or its process is gone)."""
    try:
        status = json.loads(status_path().read_text())
        os.kill(status["pid"], 0)
    except (OSError, ValueError, KeyError):
        return None
    return status
