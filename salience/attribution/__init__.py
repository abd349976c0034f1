"""The attribution engine: load a model, parse a prompt, explain it. Knows nothing of LSP."""

from salience.attribution.engine import Request, explain
from salience.attribution.errors import (Cancelled, ModelLoadError, ParameterError, PromptError, SalienceError,
                                         UnknownMethodError)
from salience.attribution.methods import (DEFAULT_ALIAS, DEFAULT_METHOD, FALLBACK_METHOD, default_method, get_method,
                                          method_classes, method_names)
from salience.attribution.model import LoadedModel, load_model
from salience.attribution.prompt import PromptDocument, parse_prompt, read_prompt_file
from salience.attribution.result import AttributionResult, SourceToken

__all__ = ["AttributionResult", "Cancelled", "DEFAULT_ALIAS", "DEFAULT_METHOD", "FALLBACK_METHOD", "LoadedModel",
           "ModelLoadError", "ParameterError", "PromptDocument", "PromptError", "Request", "SalienceError",
           "SourceToken", "UnknownMethodError", "default_method", "explain", "get_method", "load_model",
           "method_classes", "method_names", "parse_prompt", "read_prompt_file"]
