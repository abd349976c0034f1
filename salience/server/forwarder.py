"""`salience serve --daemon`: relay an editor's LSP stream to this user's daemon, starting it when there is none.

Torch-free, so it is up in a fraction of a second. It dials the daemon's socket; where no one answers, it takes
the start lock (two editors starting at once start one daemon: the loser dials the winner's), starts the daemon
detached and dials again until it answers. Then it copies bytes both ways until either side closes.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from salience.attribution import SalienceError
from salience.server.daemon import IDLE_TIMEOUT_S, log_path, runtime_dir, socket_path

START_TIMEOUT_S = 120.0
"""How long a started daemon may take to listen (its imports; the model loads later, on the first run)."""
CHUNK = 1 << 16


def dial(path: Path) -> socket.socket | None:
    """A connection to the socket at `path`, or None where no one listens there."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(str(path))
    except (FileNotFoundError, ConnectionRefusedError):
        sock.close()
        return None
    return sock


@contextlib.contextmanager
def start_lock(folder: Path) -> Iterator[None]:
    """Held while one forwarder starts the daemon."""
    with open(folder / "daemon.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def connect(idle_timeout: float = IDLE_TIMEOUT_S) -> socket.socket:
    """A connection to this user's daemon, started (detached) where none answers."""
    folder = runtime_dir()
    path = socket_path(folder)
    if (sock := dial(path)) is not None:
        return sock
    with start_lock(folder):
        if (sock := dial(path)) is not None:  # another forwarder started it while this one waited
            return sock
        with open(log_path(folder), "a") as log:
            subprocess.Popen(
                [sys.executable, "-m", "salience", "daemon", "run", "--idle-timeout", str(idle_timeout)],
                stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True, close_fds=True,
            )  # fmt: skip
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if (sock := dial(path)) is not None:
                return sock
            time.sleep(0.05)
    raise SalienceError(f"the salience daemon did not answer within {START_TIMEOUT_S:.0f} s; see {log_path(folder)}")


def relay(sock: socket.socket, stdin: int = 0, stdout: int = 1) -> int:
    """Copy the editor's bytes to the daemon and back until the daemon closes the connection."""

    def upstream() -> None:
        while data := os.read(stdin, CHUNK):
            sock.sendall(data)
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_WR)

    threading.Thread(target=upstream, daemon=True).start()
    while data := sock.recv(CHUNK):
        os.write(stdout, data)
    return 0


def forward(idle_timeout: float = IDLE_TIMEOUT_S) -> int:
    return relay(connect(idle_timeout))
