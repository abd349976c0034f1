"""`salience serve`: the language server, over stdio (what editors start), TCP (one model for many editors)
or WebSocket."""

from __future__ import annotations

import argparse
import os
from typing import Any

from rich.console import Console

from salience.attribution import SalienceError


def add_parser(sub: Any) -> None:
    parser = sub.add_parser("serve", help="run the language server (stdio unless --tcp or --ws)")
    transport = parser.add_mutually_exclusive_group()
    transport.add_argument("--stdio", action="store_true", help="talk LSP over stdin/stdout (the default)")
    where = "on 127.0.0.1, this machine only, unless HOST is given"
    transport.add_argument(
        "--tcp", metavar="[HOST:]PORT", help=f"listen for editors over TCP, sharing one model ({where})"
    )
    transport.add_argument("--ws", metavar="[HOST:]PORT", help=f"listen for clients over WebSocket ({where})")
    transport.add_argument(
        "--daemon",
        action="store_true",
        help="relay stdio to this user's shared daemon (one model for every editor), starting it if needed",
    )
    parser.add_argument("--log-file", help="write the server log here (stdout belongs to LSP)")
    parser.set_defaults(run=run)


LOOPBACK = ("127.0.0.1", "localhost", "::1", "[::1]")


def run(args: argparse.Namespace, out: Console, err: Console) -> int:
    if args.daemon:
        if os.name != "posix":
            raise SalienceError("--daemon needs Unix sockets; on this system, run `salience serve`")
        from salience.server.forwarder import forward

        return forward()
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
