"""The `salience` command: one module per subcommand, each adding its parser (`add_parser`) and running it
(`run(args, out, err)`), as Inseq's commands do. Nothing here imports torch: `--help` is instant."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from rich.console import Console

import salience.cli.attribute as attribute
import salience.cli.check as check
import salience.cli.daemon_control as daemon_control
import salience.cli.demo as demo
import salience.cli.diff as diff
import salience.cli.faithfulness_report as faithfulness_report
import salience.cli.method_list as method_list
import salience.cli.serve as serve
from salience.attribution import SalienceError, go_offline

COMMANDS = (attribute, faithfulness_report, check, diff, method_list, serve, daemon_control, demo)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="salience", description="Which parts of a prompt does the model rely on?")
    sub = parser.add_subparsers(dest="command", required=True)
    for command in COMMANDS:
        command.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    go_offline()  # models come from local files: nothing in this process may reach a model hub
    out, err = Console(), Console(stderr=True)
    try:
        return args.run(args, out, err)
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
