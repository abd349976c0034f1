"""`salience serve --tcp`: one host, many editors, one model.

Each TCP connection gets its own `SalienceServer` (documents, settings, progress, cancellation)
over one `ModelWorker` with several threads, whose turnstile lets runs of all clients take turns
on the one model between batches. A client's `exit` or disconnection ends its connection and
cancels its runs; the host keeps serving the others.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import threading
from collections.abc import Generator
from typing import Any

from lsprotocol import types
from pygls.io_ import run_async
from pygls.protocol import lsp_method

from salience.server.handlers import create_server
from salience.server.server import SalienceProtocol
from salience.server.worker import ModelWorker

log = logging.getLogger(__name__)

RUN_THREADS = 8
"""Runs that can be in progress at once (one uses the model at a time; the others wait their turn)."""


class ConnectionProtocol(SalienceProtocol):
    """One client of a shared host."""

    @lsp_method(types.EXIT)
    def lsp_exit(self, *args: Any) -> Generator[Any, Any, None]:
        """End this client's connection only (pygls' own `exit` ends the process)."""
        if self.writer is not None:
            self.writer.close()
        yield from ()


class SharedHost:
    """Accepts editors over TCP; every connection shares the worker (one model in memory)."""

    def __init__(self, threads: int = RUN_THREADS) -> None:
        self.worker = ModelWorker(threads=threads)
        self._ids = itertools.count(1)
        self.connected: set[str] = set()

    async def connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Serve one editor until it exits or disconnects, then cancel its runs."""
        client = f"client-{next(self._ids)}"
        server = create_server(self.worker, client, ConnectionProtocol)
        server.protocol.set_writer(writer)
        server._stop_event = stop = threading.Event()
        self.connected.add(client)
        log.info("%s connected from %s", client, writer.get_extra_info("peername"))
        try:
            await run_async(
                stop_event=stop,
                reader=reader,
                protocol=server.protocol,
                logger=log,
                error_handler=server.report_server_error,
            )
        except (ConnectionError, OSError) as err:
            log.info("%s: connection lost: %s", client, err)
        finally:
            server.features.shutdown()
            self.connected.discard(client)
            writer.close()
            log.info("%s left", client)

    async def serve(self, host: str, port: int) -> None:
        listener = await asyncio.start_server(self.connection, host, port)
        async with listener:
            await listener.serve_forever()

    def serve_tcp(self, host: str, port: int) -> int:
        """Serve until interrupted."""
        try:
            asyncio.run(self.serve(host, port))
        except KeyboardInterrupt:
            pass
        finally:
            self.worker.shutdown()
        return 0
