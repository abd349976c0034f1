"""The attribution engine's public interface: load a model, parse a prompt, explain it. Knows nothing of LSP.

The server, the CLI, batch mode, the views and the benchmarks import from here only. Names load
lazily (PEP 562): importing this package imports neither torch nor transformers, and the first use
of a name imports the module that defines it, so a renderer or a settings model stays light.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_EXPORTS: dict[str, tuple[str, ...]] = {
    "aggregation": ("heatmap_of", "mean_of_normalised", "sum_of_rows"),
    "compute.batching": ("CHECKPOINT_TOKENS",),
    "compute.patching": ("patched",),
    "methods.lrp.architectures": ("attnlrp_rules",),
    "cache": ("ResultCache",),
    "engine": ("explain",),
    "plan": ("requested_method",),
    "errors": ("Cancelled", "ModelLoadError", "ParameterError", "PromptError", "SalienceError", "UnknownMethodError"),
    "methods": (
        "DEFAULT_ALIAS",
        "DEFAULT_METHOD",
        "FALLBACK_METHOD",
        "AttributionInput",
        "Hooks",
        "Method",
        "MethodParams",
        "default_method",
        "get_method",
        "method_classes",
        "method_names",
    ),
    "salience.prompt.expect": ("Expect", "SectionSpec", "ShareBound"),
    "model": ("LoadedModel", "load_model"),
    "placement": ("Placement", "parse_max_memory"),
    "progress": ("CancelCheck", "Progress"),
    "request": ("Request",),
    "salience.prompt.document": (
        "MAX_PROMPT_BYTES",
        "PROMPT_SUFFIXES",
        "Problem",
        "PromptDocument",
        "is_prompt_path",
        "parse_prompt",
        "prompt_text",
        "read_prompt_file",
    ),
    "result": ("COMPLETENESS_WARNING", "AttributionResult", "SourceToken"),
    "sources": (
        "EMBEDDED_NAMES",
        "FRONT_MATTER_SERVER",
        "OFFLINE_FLAGS",
        "Notify",
        "ServerOptions",
        "cache_root",
        "converted_gguf",
        "embedded_gguf_path",
        "go_offline",
        "is_served",
        "model_directory",
    ),
    "store": ("ResultStore", "model_stamp", "result_key"),
    "targets": ("Target", "resolve_target"),
    "tokens": ("encode_prompt", "use_chat"),
}
"""Names by the module that defines them: an engine module, or one of `salience.prompt` (what a prompt file
says, torch-free), which the engine's users reach through here."""
_HOME = {name: module for module, names in _EXPORTS.items() for name in names}
__all__ = sorted(_HOME)


def __getattr__(name: str) -> Any:
    """Import the module that defines `name` on first use, and keep the name here."""
    module = _HOME.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module if module.startswith("salience.") else f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


if TYPE_CHECKING:  # what type checkers and editors see; at run time each name loads on first use
    from salience.attribution.aggregation import heatmap_of, mean_of_normalised, sum_of_rows
    from salience.attribution.cache import ResultCache
    from salience.attribution.compute.batching import CHECKPOINT_TOKENS
    from salience.attribution.compute.patching import patched
    from salience.attribution.engine import explain
    from salience.attribution.errors import (
        Cancelled,
        ModelLoadError,
        ParameterError,
        PromptError,
        SalienceError,
        UnknownMethodError,
    )
    from salience.attribution.methods import (
        DEFAULT_ALIAS,
        DEFAULT_METHOD,
        FALLBACK_METHOD,
        AttributionInput,
        Hooks,
        Method,
        MethodParams,
        default_method,
        get_method,
        method_classes,
        method_names,
    )
    from salience.attribution.methods.lrp.architectures import attnlrp_rules
    from salience.attribution.model import LoadedModel, load_model
    from salience.attribution.placement import Placement, parse_max_memory
    from salience.attribution.plan import requested_method
    from salience.attribution.progress import CancelCheck, Progress
    from salience.attribution.request import Request
    from salience.attribution.result import COMPLETENESS_WARNING, AttributionResult, SourceToken
    from salience.attribution.sources import (
        EMBEDDED_NAMES,
        FRONT_MATTER_SERVER,
        OFFLINE_FLAGS,
        Notify,
        ServerOptions,
        cache_root,
        converted_gguf,
        embedded_gguf_path,
        go_offline,
        is_served,
        model_directory,
    )
    from salience.attribution.store import ResultStore, model_stamp, result_key
    from salience.attribution.targets import Target, resolve_target
    from salience.attribution.tokens import encode_prompt, use_chat
    from salience.prompt.document import (
        MAX_PROMPT_BYTES,
        PROMPT_SUFFIXES,
        Problem,
        PromptDocument,
        is_prompt_path,
        parse_prompt,
        prompt_text,
        read_prompt_file,
    )
    from salience.prompt.expect import Expect, SectionSpec, ShareBound
