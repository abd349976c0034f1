"""The method registry: explicit, name-keyed, guarded against overwrites."""

from __future__ import annotations

from salience.attribution.errors import UnknownMethodError
from salience.attribution.methods.attention import Attention
from salience.attribution.methods.base import AttributionInput, Hooks, Method, MethodParams
from salience.attribution.methods.input_x_gradient import InputXGradient
from salience.attribution.methods.integrated_gradients import IntegratedGradients
from salience.attribution.methods.lrp.attnlrp import AttnLRP
from salience.attribution.methods.occlusion import Occlusion
from salience.attribution.methods.reagent.reagent import ReAGent
from salience.attribution.methods.saliency import Saliency
from salience.attribution.methods.shapley.kernelshap import KernelShap
from salience.attribution.methods.shapley.lime import Lime
from salience.attribution.methods.shapley.textgenshap import TextGenShap
from salience.attribution.methods.sig.sequential_integrated_gradients import SequentialIntegratedGradients
from salience.attribution.model import LoadedModel

DEFAULT_METHOD = "attnlrp"
"""The interactive default, chosen by benchmarks/run.py (docs/methods.md, docs/BENCHMARKS.md)."""
DEFAULT_ALIAS = "default"
"""A method name (in a request, front matter or settings) meaning: the default this model supports."""
FALLBACK_METHOD = "input_x_gradient"
"""The default where the model's architecture is one DEFAULT_METHOD does not support."""
FALLBACK_WEAKER = "the answer in its top 5 on 50% of docs/BENCHMARKS.md's needle prompts, against 100%"
"""How much weaker FALLBACK_METHOD is than DEFAULT_METHOD, by the benchmark that chose the default."""
SERVED_METHOD = "occlusion"
"""The default for a served model, of the methods that ask only the scoring boundary: by docs/BENCHMARKS.md the
cheapest of them (one sequence per source token; NC log ratio +0.35 at 19 forward equivalents a prompt, against
ReAGent's +0.09 at 286). TextGenSHAP, LIME and KernelSHAP score higher there, but with attention masking, which a
served model cannot do, and they send hundreds of sequences (up to `max_forwards`) where occlusion sends one per
token."""
_REGISTRY: dict[str, type[Method]] = {}


def register(cls: type[Method]) -> type[Method]:
    """Add a method under its name; a second method of the same name is an error."""
    if cls.name in _REGISTRY and _REGISTRY[cls.name] is not cls:
        raise ValueError(f"method {cls.name!r} is already registered by {_REGISTRY[cls.name].__qualname__}")
    _REGISTRY[cls.name] = cls
    return cls


def get_method(name: str) -> Method:
    """An instance of the method called `name`; unknown names list the known ones."""
    if name not in _REGISTRY:
        raise UnknownMethodError(f"unknown method {name!r}; known methods: {', '.join(sorted(_REGISTRY))}")
    return _REGISTRY[name]()


def is_default(name: str | None) -> bool:
    """Whether a requested method name leaves the choice to `default_method`."""
    return name is None or name == DEFAULT_ALIAS


def default_method(loaded: LoadedModel) -> str:
    """The method used when none is named: the default, or its fallback for an architecture it lacks."""
    if loaded.served:
        return SERVED_METHOD
    return DEFAULT_METHOD if get_method(DEFAULT_METHOD).supports(loaded) else FALLBACK_METHOD


def fallback_note(loaded: LoadedModel) -> str:
    """The line every view shows where FALLBACK_METHOD stands in for DEFAULT_METHOD."""
    gap = get_method(DEFAULT_METHOD).coverage_gap(loaded) or "does not cover this model"
    return f"{DEFAULT_METHOD} {gap}; showing input × gradient (weaker: {FALLBACK_WEAKER})"


def served_methods() -> list[str]:
    """The methods that explain a served model (they ask only the scoring boundary)."""
    return [name for name in method_names() if not _REGISTRY[name].needs_weights]


def method_names() -> list[str]:
    return sorted(_REGISTRY)


def method_classes() -> list[type[Method]]:
    return [_REGISTRY[n] for n in method_names()]


for _cls in (
    Saliency,
    InputXGradient,
    IntegratedGradients,
    Attention,
    Occlusion,
    AttnLRP,
    SequentialIntegratedGradients,
    ReAGent,
    TextGenShap,
    Lime,
    KernelShap,
):
    register(_cls)

__all__ = [
    "AttributionInput",
    "DEFAULT_ALIAS",
    "DEFAULT_METHOD",
    "FALLBACK_METHOD",
    "Hooks",
    "Method",
    "MethodParams",
    "default_method",
    "get_method",
    "is_default",
    "method_classes",
    "method_names",
    "register",
    "served_methods",
    "fallback_note",
]
