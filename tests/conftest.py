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
