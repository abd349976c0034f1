"""A small stub of a vLLM server, only to inject faults (the agreement tests use the real server).

It answers /v1/models and /v1/completions as vLLM does (every prompt token scored -1.0, rank 1; generation
returns `generated`), then `faults` take over: a list of (status, body, delay) answered in turn to the
completions asked after `healthy_calls` good ones (the last again and again, unless `repeat_last` is False).
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Stub:
    name: str = "stub"
    healthy_calls: int = 10**9
    faults: list[tuple[int, str, float]] = field(default_factory=list)
    repeat_last: bool = True
    """The last fault answers every later request; False: the stub heals after the faults."""
    prompt_logprobs: bool = True
    """False: answer as llama.cpp does, generated tokens' log-probabilities only."""
    generated: list[int] = field(default_factory=lambda: [5, 6])
    calls: int = 0
    url: str = ""

    def completion(self, body: dict[str, Any]) -> tuple[int, str, float]:
        self.calls += 1
        if self.calls > self.healthy_calls and self.faults:
            return self.faults[0] if len(self.faults) == 1 and self.repeat_last else self.faults.pop(0)
        prompts = body["prompt"] if isinstance(body["prompt"][0], list) else [body["prompt"]]
        choices = []
        for index, ids in enumerate(prompts):
            choice: dict[str, Any] = {"index": index, "text": "x"}
            if self.prompt_logprobs and body.get("prompt_logprobs") is not None:
                choice["prompt_logprobs"] = [None] + [{str(i): {"logprob": -1.0, "rank": 1}} for i in ids[1:]]
            if body.get("return_tokens_as_token_ids"):
                choice["logprobs"] = {"tokens": [f"token_id:{i}" for i in self.generated]}
            choices.append(choice)
        return 200, json.dumps({"choices": choices}), 0.0


def serve(stub: Stub):
    """Start `stub` on 127.0.0.1 (a free port); returns the server (call .shutdown())."""

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def _send(self, status: int, text: str, delay: float = 0.0) -> None:
            time.sleep(delay)
            data = text.encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            try:
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):
                pass

        def do_GET(self) -> None:
            if self.path == "/v1/models":
                self._send(200, json.dumps({"data": [{"id": stub.name}]}))
            else:
                self._send(404, json.dumps({"detail": "Not Found"}))

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            if self.path == "/v1/completions":
                self._send(*stub.completion(body))
            else:
                self._send(404, json.dumps({"detail": "Not Found"}))

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    stub.url = f"http://127.0.0.1:{httpd.server_address[1]}/v1"
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return httpd
