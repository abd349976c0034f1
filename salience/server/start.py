"""Starting the server: on stdio, WebSocket or TCP (a shared host), with every feature registered."""

from __future__ import annotations

import logging

from salience.attribution import go_offline
from salience.server.handlers import create_server
from salience.server.shared import SharedHost


def serve(transport: str = "stdio", address: str | None = None, log_file: str | None = None) -> int:
    """Run the server on stdio, TCP or WebSocket until the client exits, with no network access for models."""
    go_offline()
    logging.basicConfig(
        filename=log_file,
        level=logging.INFO if log_file else logging.WARNING,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
    )
    host, _, port = (address or "127.0.0.1:2087").rpartition(":")
    if transport == "tcp":  # many editors, one model: a server per connection over one worker
        return SharedHost().serve_tcp(host or "127.0.0.1", int(port))
    server = create_server()
    if transport == "stdio":
        server.start_io()
    else:
        server.start_ws(host or "127.0.0.1", int(port))
    return 0
