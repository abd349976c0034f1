"""The per-user daemon with real processes: two editors' `salience serve --daemon` share one daemon, a stale
socket is replaced, the daemon exits when idle and on `salience daemon stop`, and its folder is private."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from salience.server.daemon import RuntimeDirError, log_path, peer_uid, runtime_dir, socket_path, status_path

pytestmark = pytest.mark.skipif(not hasattr(socket, "AF_UNIX"), reason="Unix sockets only")


@pytest.fixture
def runtime(monkeypatch):
    """A private runtime folder of this test's (short: a socket path holds 107 bytes at most); any daemon
    started in it is stopped after."""
    folder = Path(tempfile.mkdtemp(prefix="sd"))
    monkeypatch.setenv("SALIENCE_RUNTIME_DIR", str(folder))
    yield folder
    salience("daemon", "stop")
    shutil.rmtree(folder, ignore_errors=True)


def salience(*args: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "salience", *args], capture_output=True, text=True, timeout=60, **kwargs
    )


def message(body: dict) -> bytes:
    data = json.dumps(body).encode()
    return b"Content-Length: %d\r\n\r\n" % len(data) + data


def answer(stream) -> dict:
    header = b""
    while not header.endswith(b"\r\n\r\n"):
        header += stream.read(1)
    return json.loads(stream.read(int(header.split(b"Content-Length:")[1].split(b"\r\n")[0])))


INITIALIZE = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"processId": None, "capabilities": {}}}
GOODBYE = message({"jsonrpc": "2.0", "id": 2, "method": "shutdown"}) + message({"jsonrpc": "2.0", "method": "exit"})


def editor() -> subprocess.Popen:
    """An editor's server process, as editors start it, with `initialize` sent."""
    process = subprocess.Popen(
        [sys.executable, "-m", "salience", "serve", "--daemon"], stdin=subprocess.PIPE, stdout=subprocess.PIPE
    )
    process.stdin.write(message(INITIALIZE))
    process.stdin.flush()
    return process


def leave(process: subprocess.Popen) -> int:
    process.stdin.write(GOODBYE)
    process.stdin.flush()
    return process.wait(timeout=30)


def daemon_pid(folder: Path) -> int:
    return json.loads(status_path(folder).read_text())["pid"]


def test_two_editors_starting_at_once_share_one_daemon(runtime):
    first, second = editor(), editor()  # both find no daemon: the start lock lets one start it
    for process in (first, second):
        assert "capabilities" in answer(process.stdout)["result"]
    started = [line for line in log_path(runtime).read_text().splitlines() if " listening on " in line]
    assert len(started) == 1, started  # one daemon was started, not one per editor
    pid = daemon_pid(runtime)
    status = salience("daemon", "status")
    assert status.returncode == 0 and f"pid {pid}" in status.stdout and str(socket_path(runtime)) in status.stdout
    assert leave(first) == 0 and leave(second) == 0
    third = editor()  # a later editor reaches the same, warm daemon
    assert "capabilities" in answer(third.stdout)["result"] and daemon_pid(runtime) == pid
    assert leave(third) == 0
    assert oct(socket_path(runtime).stat().st_mode & 0o777) == "0o600"
    assert oct(runtime.stat().st_mode & 0o777) == "0o700"


def test_a_stale_socket_is_replaced(runtime):
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(str(socket_path(runtime)))  # a file nobody listens on, as a killed daemon leaves
    stale.close()
    process = editor()
    assert "capabilities" in answer(process.stdout)["result"]
    assert leave(process) == 0


def test_the_daemon_exits_when_idle_and_cleans_up(runtime):
    daemon = subprocess.Popen([sys.executable, "-m", "salience", "daemon", "run", "--idle-timeout", "1"])
    deadline = time.monotonic() + 60
    while not socket_path(runtime).exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    process = editor()
    assert "capabilities" in answer(process.stdout)["result"]
    time.sleep(2)  # longer than the idle timeout, but an editor is connected
    assert daemon.poll() is None
    assert leave(process) == 0
    assert daemon.wait(timeout=30) == 0
    assert not socket_path(runtime).exists() and not status_path(runtime).exists()


def test_stop_ends_the_daemon_and_status_says_so(runtime):
    process = editor()
    answer(process.stdout)
    assert leave(process) == 0
    assert f"stopped pid {daemon_pid(runtime)}" in salience("daemon", "stop").stdout
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and status_path(runtime).exists():
        time.sleep(0.1)
    assert not status_path(runtime).exists() and not socket_path(runtime).exists()  # its own clean-up ran
    assert salience("daemon", "status").returncode == 3


def test_a_runtime_folder_others_can_enter_is_refused(runtime):
    runtime.chmod(0o755)
    with pytest.raises(RuntimeDirError, match="not private to this user"):
        runtime_dir()
    result = salience("serve", "--daemon", input="")
    assert result.returncode == 1 and "not private to this user" in result.stderr


def test_the_peer_credentials_are_read():
    left, right = socket.socketpair(socket.AF_UNIX)
    assert peer_uid(left) == os.getuid()
    left.close()
    right.close()
