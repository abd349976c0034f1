"""One HTTP connection to a served model: pooled, with time-outs, capped retries and cancellation.

Requests run on an event loop of their own (a daemon thread), so the worker that asks can stop waiting the
moment its run is cancelled: the requests still in flight are cancelled with it. An API key goes in the
Authorization header only; no message, log line or error shows it.
"""

from __future__ import annotations

import asyncio
import json
import random
import threading
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import Future
from concurrent.futures import TimeoutError as WaitTimeout
from typing import Any, TypeVar

import httpx2 as httpx

from salience.attribution.errors import Cancelled, ModelLoadError, first_line
from salience.attribution.progress import CancelCheck, no_cancel
from salience.attribution.sources import Limits

T = TypeVar("T")
RETRIED = (429, 502, 503, 504)
"""Statuses worth another try (busy, overloaded, a proxy between restarts); others fail at once."""


class RemoteError(ModelLoadError):
    """A served model failed to answer, or answered what salience cannot use: one line, naming the fix."""


class Connection:
    """POSTs and GETs of JSON to one server's base URL."""

    def __init__(self, base_url: str, api_key: str | None = None, limits: Limits | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.limits = limits or Limits()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="salience-remote", daemon=True)
        self._thread.start()
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        timeout = httpx.Timeout(self.limits.timeout_s, connect=min(10.0, self.limits.timeout_s))
        pool = httpx.Limits(max_connections=self.limits.concurrency, max_keepalive_connections=self.limits.concurrency)
        self._client: httpx.AsyncClient = self._on_loop(self._make_client(headers, timeout, pool))
        self._gate = asyncio.Semaphore(self.limits.concurrency)

    async def _make_client(self, headers: dict[str, str], timeout: Any, pool: Any) -> Any:
        return httpx.AsyncClient(base_url=self.base_url, headers=headers, timeout=timeout, limits=pool, verify=True)

    def _on_loop(self, coroutine: Awaitable[T]) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result()  # type: ignore[arg-type]

    def get(self, path: str, cancelled: CancelCheck = no_cancel) -> Any:
        """The JSON a GET of `path` answers."""
        return self.gather([lambda: self._request("GET", path, None)], cancelled)[0]

    def post(self, path: str, body: dict[str, Any], cancelled: CancelCheck = no_cancel) -> Any:
        """The JSON a POST of `body` to `path` answers."""
        return self.post_many(path, [body], cancelled)[0]

    def post_many(
        self,
        path: str,
        bodies: Sequence[dict[str, Any]],
        cancelled: CancelCheck = no_cancel,
        on_answer: Callable[[int], None] | None = None,
    ) -> list[Any]:
        """The answers to several POSTs, `Limits.concurrency` in flight at once, in the order asked; `on_answer`
        is told the index of each answer as it comes. A cancel stops the waiting and every request left."""
        calls = [lambda body=body: self._request("POST", path, body) for body in bodies]
        return self.gather(calls, cancelled, on_answer)

    def gather(
        self,
        calls: Sequence[Callable[[], Awaitable[Any]]],
        cancelled: CancelCheck = no_cancel,
        on_answer: Callable[[int], None] | None = None,
    ) -> list[Any]:
        future: Future[list[Any]] = asyncio.run_coroutine_threadsafe(self._all(calls, on_answer), self._loop)
        while True:
            try:
                return future.result(timeout=0.05)
            except WaitTimeout:
                if cancelled():
                    future.cancel()
                    raise Cancelled("attribution cancelled") from None

    async def _all(self, calls: Sequence[Callable[[], Awaitable[Any]]], on_answer: Callable[[int], None] | None) -> Any:
        async def one(index: int) -> Any:
            async with self._gate:
                answer = await calls[index]()
            if on_answer:
                on_answer(index)
            return answer

        tasks = [asyncio.ensure_future(one(i)) for i in range(len(calls))]
        try:
            return await asyncio.gather(*tasks)
        finally:
            for task in tasks:
                task.cancel()

    async def _request(self, method: str, path: str, body: dict[str, Any] | None) -> Any:
        """One request, tried again on a busy server or a dropped connection; its JSON, or a `RemoteError`."""
        where = f"{self.base_url}{path}"
        attempt = failed = 0
        while True:
            try:
                response = await self._client.request(method, path, json=body)
            except httpx.TimeoutException:
                raise RemoteError(
                    f"{where} did not answer within {self.limits.timeout_s:g} s: is the server overloaded? "
                    "(raise the time-out, or explain a shorter prompt)"
                ) from None
            except httpx.TransportError as err:
                if failed == self.limits.reconnects:
                    raise RemoteError(f"cannot reach {where}: {first_line(err)} (is the server running?)") from None
                failed += 1
                await asyncio.sleep(_backoff(failed - 1, None))
                continue
            if response.status_code in RETRIED and attempt < self.limits.retries:
                await asyncio.sleep(_backoff(attempt, response.headers.get("retry-after")))
                attempt += 1
                continue
            return _json(response, where)

    def close(self) -> None:
        """Close the pooled connections and stop the loop."""
        if self._loop.is_running():
            self._on_loop(self._client.aclose())
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=5)


def _backoff(attempt: int, retry_after: str | None) -> float:
    """Seconds before try `attempt + 1`: what Retry-After asks (up to 30), else 0.5 s doubling up to 8, jittered."""
    if retry_after:
        try:
            return min(30.0, max(0.0, float(retry_after)))
        except ValueError:
            pass
    return min(8.0, 0.5 * 2**attempt) * random.uniform(0.8, 1.2)


def _json(response: Any, where: str) -> Any:
    """The body of a 2xx answer as JSON, or a `RemoteError` with the server's own message."""
    if response.status_code >= 400:
        raise RemoteError(f"{where} answered HTTP {response.status_code}: {_message(response)}")
    try:
        return response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise RemoteError(f"{where} answered something that is not JSON: {response.text[:80]!r}") from None


def _message(response: Any) -> str:
    """The error message inside a server's JSON error body (OpenAI's shape and others), else its first line."""
    try:
        body = response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        return first_line(Exception(response.text[:200])) if response.text.strip() else response.reason_phrase
    error = body.get("error", body) if isinstance(body, dict) else body
    message = error.get("message") or error.get("detail") if isinstance(error, dict) else error
    return first_line(Exception(str(message)))[:200]
