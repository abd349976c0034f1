"""Who uses the model now: one run at a time, and between its batches a run gives way to waiting ones.

The server runs each attribution on a worker thread that must hold the turnstile. At every
cancellation check (between batches) a run that has held it for `slice_s` lets the next waiting
run go first, then queues again, so a client's slow method cannot starve another's default run.
Waiting runs are served client by client (the one served longest ago first), then in order.
A run never gives way while a method's rules are installed in the model (`patching.patched`),
and a run for another model waits until no run is suspended on the loaded one.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from salience.attribution import patched


@dataclass(eq=False)
class Ticket:
    client: str
    key: Hashable
    started: bool = False


class Turnstile:
    """A fair, cooperative lock around one model."""

    def __init__(self, slice_s: float = 0.05) -> None:
        self.slice_s = slice_s
        self.loaded_key: Hashable = None
        self._cond = threading.Condition()
        self._waiting: list[Ticket] = []
        self._holder: Ticket | None = None
        self._since = 0.0
        self._served: dict[str, float] = {}
        self.turns = 0
        """How many times the model changed hands (for tests and logs)."""

    @contextmanager
    def turn(self, client: str, key: Hashable) -> Iterator[Callable[[], None]]:
        """Hold the model for one run; the yielded callable is the run's place to give way."""
        ticket = Ticket(client, key)
        self._acquire(ticket)
        try:
            yield lambda: self._give_way(ticket)
        finally:
            with self._cond:
                self._holder = None
                self._cond.notify_all()

    def _acquire(self, ticket: Ticket) -> None:
        with self._cond:
            self._waiting.append(ticket)
            while self._holder is not None or self._next() is not ticket:
                self._cond.wait()
            self._waiting.remove(ticket)
            self._holder, ticket.started = ticket, True
            self._since = self._served[ticket.client] = time.monotonic()
            self.turns += 1

    def _next(self, giving_way: bool = False) -> Ticket | None:
        """The waiting run to serve next: the least recently served client's first eligible run."""
        suspended = giving_way or any(t.started for t in self._waiting)
        eligible = [t for t in self._waiting if t.started or t.key == self.loaded_key or not suspended]
        return min(eligible, key=lambda t: self._served.get(t.client, 0.0), default=None)

    def _give_way(self, ticket: Ticket) -> None:
        with self._cond:
            if (
                not self._waiting
                or patched()
                or time.monotonic() - self._since < self.slice_s
                or self._next(giving_way=True) is None
            ):
                return
            self._holder = None
            self._cond.notify_all()
        self._acquire(ticket)
