"""A served model that fails gives one line naming the fault, within its time-out; nothing hangs."""

from __future__ import annotations

import json
import socket
import threading
import time

import pytest
from stub import Stub, serve

from salience.attribution import Cancelled, Request, ServerOptions, explain, load_model, parse_prompt
from salience.attribution.remote.connection import RemoteError
from salience.attribution.sources import Limits

OK = json.dumps({"choices": []})
FAST = ServerOptions(limits=Limits(timeout_s=1.0, retries=1))


@pytest.fixture
def stub():
    made: list = []

    def start(**kwargs) -> Stub:
        stub = Stub(**kwargs)
        made.append(serve(stub))
        return stub

    yield start
    for httpd in made:
        httpd.shutdown()


def connect(stub: Stub, tokenizer, options: ServerOptions = FAST, name: str | None = None):
    from dataclasses import replace

    return load_model(stub.url, server=replace(options, tokenizer=str(tokenizer), served_model=name))


def one_line(err: pytest.ExceptionInfo) -> str:
    message = str(err.value)
    assert "\n" not in message and len(message) < 300, message
    return message


def run(model) -> None:
    explain(model, parse_prompt("The vault code is 7733. Repeat it:"), Request(method="occlusion"))


def test_a_server_that_is_down(tiny_model_dir):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # nothing listens once it closes
    start = time.perf_counter()
    with pytest.raises(RemoteError) as err:
        load_model(f"http://127.0.0.1:{port}/v1", server=FAST)
    assert "cannot reach" in one_line(err) and "is the server running?" in str(err.value)
    assert time.perf_counter() - start < 10


def test_a_slow_server_times_out(stub, tiny_model_dir):
    slow = stub(healthy_calls=0, faults=[(200, OK, 3.0)])
    start = time.perf_counter()
    with pytest.raises(RemoteError) as err:
        connect(slow, tiny_model_dir)
    assert "did not answer within 1 s" in one_line(err)
    assert time.perf_counter() - start < 2.9


@pytest.mark.parametrize(
    ("fault", "said"),
    [
        ((500, json.dumps({"error": {"message": "boom"}}), 0.0), "answered HTTP 500: boom"),
        ((429, json.dumps({"error": {"message": "busy"}}), 0.0), "answered HTTP 429: busy"),
        ((200, "{not json", 0.0), "answered something that is not JSON"),
    ],
)
def test_a_fault_during_a_run_is_one_line(stub, tiny_model_dir, fault, said):
    failing = stub(healthy_calls=1, faults=[fault])  # connecting takes one completion request
    model = connect(failing, tiny_model_dir)
    with pytest.raises(RemoteError) as err:
        run(model)
    assert said in one_line(err)
    model.close()


def test_a_busy_server_is_asked_again(stub, tiny_model_dir):
    busy = stub(healthy_calls=1, faults=[(429, "{}", 0.0), (503, "{}", 0.0)], repeat_last=False)
    model = connect(busy, tiny_model_dir, ServerOptions(limits=Limits(timeout_s=5.0, retries=3)))
    run(model)  # refused twice, answered the third time
    assert not busy.faults
    model.close()


def test_a_wrong_model_name(stub, tiny_model_dir):
    with pytest.raises(RemoteError) as err:
        connect(stub(), tiny_model_dir, name="gpt-4")
    assert "serves stub, not 'gpt-4'" in one_line(err)


def test_a_server_without_prompt_logprobs_is_refused_at_connect(stub, tiny_model_dir):
    """As llama.cpp's server answers: a completion, but log-probabilities of generated tokens only."""
    with pytest.raises(RemoteError) as err:
        connect(stub(prompt_logprobs=False), tiny_model_dir)
    assert "does not return log-probabilities of prompt tokens" in one_line(err) and "vLLM" in str(err.value)


def test_a_cancel_stops_waiting_for_requests_in_flight(stub, tiny_model_dir):
    slow = stub(healthy_calls=1, faults=[(200, OK, 10.0)])
    model = connect(slow, tiny_model_dir, ServerOptions(limits=Limits(timeout_s=30.0, retries=1)))
    asked = threading.Event()
    threading.Timer(0.5, asked.set).start()
    start = time.perf_counter()
    with pytest.raises(Cancelled):
        explain(
            model,
            parse_prompt("The vault code is 7733. Repeat it:"),
            Request(method="occlusion"),
            cancelled=asked.is_set,
        )
    assert time.perf_counter() - start < 3
    model.close()
