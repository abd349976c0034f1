"""The turnstile: one run on the model at a time, giving way between batches, clients in turn."""

from __future__ import annotations

import threading
import time

from salience.attribution.compute.patching import changing
from salience.server.turnstile import Turnstile


def run(
    turnstile: Turnstile,
    client: str,
    key: str,
    batches: int,
    log: list[str],
    patched: bool = False,
    started: threading.Event | None = None,
) -> threading.Thread:
    def work() -> None:
        with turnstile.turn(client, key) as give_way:
            turnstile.loaded_key = key
            if started:
                started.set()
            for i in range(batches):
                log.append(f"{client}{i}")
                time.sleep(0.002)
                if patched:
                    with changing():
                        give_way()
                else:
                    give_way()

    thread = threading.Thread(target=work)
    thread.start()
    return thread


def test_a_long_run_gives_way_to_other_clients_between_batches():
    turnstile, log, started = Turnstile(slice_s=0.0), [], threading.Event()
    long = run(turnstile, "a", "m", 200, log, started=started)
    started.wait()
    short = [run(turnstile, c, "m", 2, log) for c in "bc"]
    for thread in (long, *short):
        thread.join()
    assert log.index("b1") < 20 and log.index("c1") < 20 and log[-1] == "a199"  # served long before a finished


def test_no_giving_way_while_a_method_has_changed_the_model():
    turnstile, log, started = Turnstile(slice_s=0.0), [], threading.Event()
    long = run(turnstile, "a", "m", 50, log, patched=True, started=started)
    started.wait()
    other = run(turnstile, "b", "m", 1, log)
    long.join()
    other.join()
    assert log[-1] == "b0"


def test_another_model_waits_until_no_run_is_suspended_on_the_loaded_one():
    turnstile, log, started = Turnstile(slice_s=0.0), [], threading.Event()
    long = run(turnstile, "a", "m", 100, log, started=started)
    started.wait()
    same, other = run(turnstile, "b", "m", 1, log), run(turnstile, "c", "other", 1, log)
    for thread in (long, same, other):
        thread.join()
    assert log.index("b0") < 50 and log[-1] == "c0"  # c's model would have been swapped under a suspended run
