"""The tasks the server starts, kept and their failures logged (esbonio's `run_task`), and a debounce per key."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

log = logging.getLogger(__name__)


class Tasks:
    """Holds a reference to every task started (the loop keeps only weak ones) and logs any that fails."""

    def __init__(self) -> None:
        self._running: set[asyncio.Task] = set()

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task:
        task = asyncio.get_running_loop().create_task(coro)
        self._running.add(task)
        task.add_done_callback(self._finished)
        return task

    def _finished(self, task: asyncio.Task) -> None:
        self._running.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("salience task failed", exc_info=task.exception())

    def cancel_all(self) -> None:
        for task in list(self._running):
            task.cancel()


class Debounce:
    """One wait per key: scheduling a key again restarts its wait; when a wait ends, its run starts (and is no
    longer the key's wait: a later schedule does not cancel a run already under way)."""

    def __init__(self, tasks: Tasks) -> None:
        self.tasks = tasks
        self._waiting: dict[str, asyncio.Task] = {}

    def schedule(self, key: str, delay: float, run: Callable[[], Awaitable[None]]) -> None:
        self.cancel(key)
        self._waiting[key] = self.tasks.spawn(self._after(key, delay, run))

    async def _after(self, key: str, delay: float, run: Callable[[], Awaitable[None]]) -> None:
        if delay > 0:
            await asyncio.sleep(delay)
        if self._waiting.get(key) is asyncio.current_task():
            del self._waiting[key]
        await run()

    def cancel(self, key: str) -> None:
        waiting = self._waiting.pop(key, None)
        if waiting is not None:
            waiting.cancel()

    def pending(self, key: str) -> bool:
        return key in self._waiting
