"""Shared fixtures: a tiny random Llama (milliseconds) and the embedded model (loaded once)."""

from __future__ import annotations

import os

import pytest
from hypothesis import settings
from tiny_models import save_tiny_model, tiny_llama

from salience.attribution.model import LoadedModel
from salience.attribution.targets import Target

settings.register_profile("ci", derandomize=True, database=None)
if os.environ.get("CI"):  # CI explores the same examples every run: a failure there is reproducible
    settings.load_profile("ci")


def pytest_configure(config: pytest.Config) -> None:
    """Under `pytest -n N` (make test), one compute thread per worker and per server it starts: N workers
    on N cores, each with its own pool of threads, would spend their time waiting on each other."""
    if os.environ.get("PYTEST_XDIST_WORKER"):
        os.environ["OMP_NUM_THREADS"] = "1"
        import torch

        torch.set_num_threads(1)


def pytest_sessionfinish(session: pytest.Session) -> None:
    """The run's vLLM server (tests/served) ends with the run: in the process that ran it all (xdist's
    controller, or the only one)."""
    if not hasattr(session.config, "workerinput"):
        from served.vllm_cpu import stop

        stop()


@pytest.fixture(scope="session")
def model_dir():
    """The embedded model's converted folder: a plain Hugging Face folder that vLLM loads as it is."""
    from salience.attribution.sources import model_directory

    directory, _ = model_directory("default", lambda message: None)
    return directory


@pytest.fixture(scope="session")
def vllm_url(model_dir) -> str:
    """http://127.0.0.1:PORT/v1 of the run's real vLLM server (vLLM's CPU build, tests/served/vllm_cpu.py),
    serving the embedded model: started by the first worker that asks, stopped when the run ends."""
    from served.vllm_cpu import server

    return server(model_dir).url


@pytest.fixture(scope="session")
def served(vllm_url, model_dir):
    """The served embedded model, its tokenizer named as a user would with --tokenizer."""
    from salience.attribution import ServerOptions, load_model

    model = load_model(vllm_url, server=ServerOptions(tokenizer=str(model_dir)))
    yield model
    model.close()


@pytest.fixture
def margin(record_property):
    """Assert a measured value against its limit, and report both (and their ratio) after the run.

    For every test whose value comes from training, sampling or the CPU's rounding: the summary shows
    how far each sits from its edge, on this machine.
    """

    def check(what: str, value: float, *, below: float | None = None, above: float | None = None) -> None:
        limit = below if below is not None else above
        small, large = (value, limit) if below is not None else (limit, value)
        room = f"x{large / small:.1f}" if small > 0 and large > 0 else f"by {abs(limit - value):.3g}"
        line = f"{what}: {value:.4g}, needs {'<' if below is not None else '>'} {limit:.4g} (margin {room})"
        record_property("margin", line)
        assert (value < below) if below is not None else (value > above), line

    return check


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """The margins recorded by `margin` (also from xdist workers: they travel as user properties)."""
    lines = sorted(
        {
            value
            for reports in terminalreporter.stats.values()
            for report in reports
            for name, value in getattr(report, "user_properties", ())
            if name == "margin" and getattr(report, "when", "call") == "call"
        }
    )
    if lines:
        terminalreporter.section("margins")
        for line in lines:
            terminalreporter.write_line(line)


@pytest.fixture(scope="session")
def tiny() -> LoadedModel:
    return tiny_llama()


@pytest.fixture
def tiny_case() -> tuple[list[int], Target]:
    """Nine source tokens and three target tokens, with no foil."""
    source = [5, 17, 23, 8, 42, 11, 30, 7, 19]
    return source, Target([12, 33, 4], [None, None, None], generated=False)


@pytest.fixture(scope="session")
def embedded():
    from salience.attribution import load_model

    return load_model()


@pytest.fixture
def example():
    """Read a prompt from the project's examples/ (a user's clone has no ../shared)."""
    from pathlib import Path

    root = Path(__file__).parents[1] / "examples"
    return lambda name: (root / name).read_bytes().decode("utf-8")


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory):
    directory = tmp_path_factory.mktemp("tiny-model")
    save_tiny_model(directory)
    return directory
