"""`salience serve` answers `initialize` over stdio (with VS Code's --stdio flag), TCP and WebSocket."""

from __future__ import annotations

import asyncio
import json
import socket
import sys
import time

import pytest

INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {"processId": None, "rootUri": None, "capabilities": {}},
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def framed(message: dict) -> bytes:
    body = json.dumps(message).encode()
    return b"Content-Length: %d\r\n\r\n" % len(body) + body


async def read_framed(reader: asyncio.StreamReader) -> dict:
    length = 0
    while (line := await reader.readline()) not in (b"\r\n", b""):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":")[1])
    return json.loads(await reader.readexactly(length))


async def serve(*args: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "salience",
        "serve",
        *args,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )


async def connect(port: int, timeout: float = 60.0) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """Connect once the server listens: it binds after its imports, seconds after it starts (more on a
    loaded machine), and a refused connection is the only sign of not yet."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            if time.monotonic() > deadline:
                raise TimeoutError(f"nothing listening on {port}") from None
            await asyncio.sleep(0.1)


def check(reply: dict) -> None:
    legend = reply["result"]["capabilities"]["semanticTokensProvider"]["legend"]
    assert legend["tokenTypes"] == [f"salience{i}" for i in range(1, 6)] and legend["tokenModifiers"] == ["negative"]
    assert reply["result"]["serverInfo"]["name"] == "salience"


@pytest.mark.parametrize("transport", ["stdio", "tcp", "ws"])
async def test_initialize_over(transport):
    port = free_port()
    args = {"stdio": ["--stdio"], "tcp": ["--tcp", f"127.0.0.1:{port}"], "ws": ["--ws", f"127.0.0.1:{port}"]}
    server = await serve(*args[transport])
    try:
        if transport == "stdio":
            server.stdin.write(framed(INITIALIZE))
            await server.stdin.drain()
            reply = await asyncio.wait_for(read_framed(server.stdout), 60)
        elif transport == "tcp":
            reader, writer = await asyncio.wait_for(connect(port), 60)
            writer.write(framed(INITIALIZE))
            await writer.drain()
            reply = await asyncio.wait_for(read_framed(reader), 60)
            writer.close()
        else:
            from websockets.asyncio.client import connect as ws_connect

            await asyncio.wait_for(connect(port), 60)  # wait until it listens
            async with ws_connect(f"ws://127.0.0.1:{port}") as socket_:
                await socket_.send(json.dumps(INITIALIZE))
                reply = json.loads(await asyncio.wait_for(socket_.recv(), 60))
        check(reply)
    finally:
        server.kill()
        await server.wait()


def test_bad_address_is_one_clear_error():
    import subprocess

    done = subprocess.run(
        [sys.executable, "-m", "salience", "serve", "--tcp", "nowhere"],
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 1 and "expected PORT or HOST:PORT" in done.stderr


async def test_a_bare_port_listens_on_this_machine_only_and_says_so():
    port = free_port()
    server = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "salience",
        "serve",
        "--tcp",
        str(port),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        notice = (await asyncio.wait_for(server.stderr.readline(), 60)).decode()
        assert f"127.0.0.1:{port}" in notice and "this machine only" in notice
        reader, writer = await asyncio.wait_for(connect(port), 60)
        writer.write(framed(INITIALIZE))
        await writer.drain()
        check(await asyncio.wait_for(read_framed(reader), 60))
        writer.close()
    finally:
        server.kill()
        await server.wait()


def test_listening_elsewhere_is_a_warning_and_bad_ports_are_errors():
    from salience.attribution.errors import SalienceError
    from salience.cli.serve import listen_address, listening_notice

    assert listen_address("tcp", "2087") == ("127.0.0.1", 2087)
    assert listen_address("ws", "0.0.0.0:9000") == ("0.0.0.0", 9000)
    assert "Warning" in listening_notice("ws", "0.0.0.0", 9000) and "reachable from the network" in listening_notice(
        "ws", "0.0.0.0", 9000
    )
    assert "Warning" not in listening_notice("tcp", "localhost", 2087)
    for bad in ("nowhere", ":2087", "host:", "70000", "0"):
        with pytest.raises(SalienceError):
            listen_address("tcp", bad)


def test_the_server_and_the_cli_turn_the_model_hubs_off(monkeypatch):
    from salience.attribution.sources import OFFLINE_FLAGS
    from salience.server import start

    for flag in OFFLINE_FLAGS:
        monkeypatch.setenv(flag, "0")  # recorded, so the test's end restores this process's environment
        monkeypatch.delenv(flag)

    class Quiet:
        def start_io(self) -> None:
            pass

    monkeypatch.setattr(start, "create_server", Quiet)
    assert start.serve("stdio") == 0
    import os

    assert all(os.environ[flag] == "1" for flag in OFFLINE_FLAGS)
