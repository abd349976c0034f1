"""The per-user daemon: one shared host (one model) on a Unix socket that only its user can reach.

`runtime_dir()` is private to the user (0700, owned by them); the socket in it (0600) is named by the salience
version, so a client never talks to a daemon of another version. The daemon refuses a peer of another uid
(SO_PEERCRED), writes `daemon.json` (pid, start, version, clients) beside its socket for `salience daemon
status`, and exits after `idle_timeout` seconds with no client, removing its socket. Torch-free until a
client's first run: the forwarder (`forwarder.py`) imports only this module's path helpers.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import socket
import struct
import sys
import tempfile
import time
from pathlib import Path

from salience import __version__
from salience.attribution import SalienceError

log = logging.getLogger(__name__)

IDLE_TIMEOUT_S = 600.0
"""A daemon with no client for this long exits, so nothing is left holding a model's memory."""


class RuntimeDirError(SalienceError):
    """The runtime folder is not private to this user."""


def runtime_dir() -> Path:
    """$SALIENCE_RUNTIME_DIR, else $XDG_RUNTIME_DIR/salience, else a folder of this user's under the temp dir;
    created 0700, and refused when another user owns it or others can enter it."""
    chosen = os.environ.get("SALIENCE_RUNTIME_DIR")
    xdg = os.environ.get("XDG_RUNTIME_DIR")
    folder = Path(
        chosen or (Path(xdg) / "salience" if xdg else Path(tempfile.gettempdir()) / f"salience-{os.getuid()}")
    )
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    status = folder.stat()
    if status.st_uid != os.getuid() or status.st_mode & 0o077:
        raise RuntimeDirError(
            f"{folder}: not private to this user (owner uid {status.st_uid}, mode {status.st_mode & 0o777:o})"
        )
    return folder


def socket_path(folder: Path | None = None) -> Path:
    """The daemon's socket for this salience version."""
    return (folder or runtime_dir()) / f"daemon-{__version__}.sock"


def status_path(folder: Path | None = None) -> Path:
    return (folder or runtime_dir()) / f"daemon-{__version__}.json"


def log_path(folder: Path | None = None) -> Path:
    return (folder or runtime_dir()) / f"daemon-{__version__}.log"


def peer_uid(sock: socket.socket) -> int:
    """The uid of the process at the other end of a Unix socket (Linux: SO_PEERCRED)."""
    creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    return struct.unpack("3i", creds)[1]


def run_daemon(idle_timeout: float = IDLE_TIMEOUT_S) -> int:
    """Serve editors on this user's socket until `idle_timeout` passes with none connected."""
    from salience.attribution import go_offline
    from salience.server.shared import SharedHost

    go_offline()
    folder = runtime_dir()
    logging.basicConfig(filename=log_path(folder), level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    logging.getLogger("pygls").setLevel(logging.WARNING)  # its INFO lines carry the messages: prompts stay out
    host = SharedHost()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # `salience daemon stop`: clean up on the way out
    try:
        asyncio.run(_serve(host, folder, idle_timeout))
    finally:
        host.worker.shutdown()
        for path in (socket_path(folder), status_path(folder)):
            path.unlink(missing_ok=True)
    return 0


async def _serve(host, folder: Path, idle_timeout: float) -> None:  # noqa: ANN001 (SharedHost: torch-free import)
    path = socket_path(folder)
    path.unlink(missing_ok=True)  # the caller holds the start lock: whatever is there is stale

    async def connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        uid = peer_uid(writer.get_extra_info("socket"))
        if uid != os.getuid():
            log.warning("refused a peer of uid %d", uid)
            writer.close()
            return
        await host.connection(reader, writer)

    listener = await asyncio.start_unix_server(connection, path=str(path))
    os.chmod(path, 0o600)
    started, idle_since = time.time(), time.monotonic()
    log.info("daemon %d listening on %s", os.getpid(), path)
    async with listener:
        while True:
            _write_status(folder, started, len(host.connected))
            if host.connected:
                idle_since = time.monotonic()
            elif time.monotonic() - idle_since >= idle_timeout:
                log.info("no client for %.0f s: exiting", idle_timeout)
                return
            await asyncio.sleep(min(1.0, idle_timeout / 4))


def _write_status(folder: Path, started: float, clients: int) -> None:
    record = {"pid": os.getpid(), "version": __version__, "started": started, "clients": clients}
    temporary = status_path(folder).with_suffix(".tmp")
    temporary.write_text(json.dumps(record))
    temporary.replace(status_path(folder))
