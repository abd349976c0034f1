"""Load a causal language model offline (`sources` finds its weights) onto its devices.

Parameters are frozen: every method needs gradients only with respect to the input embeddings.
"""

from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import torch

from salience.attribution.errors import ModelLoadError, first_line
from salience.attribution.placement import Placement, devices_used, input_device
from salience.attribution.sources import (
    Notify,
    ServerOptions,
    cache_root,
    converted_from,
    converted_gguf,
    is_served,
    model_directory,
)

if TYPE_CHECKING:
    from salience.attribution.scoring import Scorer, ScoreRequest

log = logging.getLogger(__name__)


@dataclass
class LoadedModel:
    """A frozen model with its tokenizer, ready for attribution."""

    model: Any
    tokenizer: Any
    model_id: str
    device: torch.device
    dtype: torch.dtype
    served: ClassVar[bool] = False
    """Weights on a server (`remote.ServedModel`): only the scoring boundary and generation reach them."""

    @property
    def context_length(self) -> int | None:
        """How many tokens the model reads at most, where its config says."""
        return getattr(self.model.config, "max_position_embeddings", None)

    @property
    def generation_eos_ids(self) -> set[int]:
        """The ids that end a turn by the model's generation config."""
        return eos_ids(getattr(self.model.generation_config, "eos_token_id", None))

    @property
    def has_chat_template(self) -> bool:
        return bool(getattr(self.tokenizer, "chat_template", None))

    def embed(self, input_ids: torch.Tensor) -> torch.Tensor:
        """Input embeddings of token ids, as the model computes them."""
        return self.model.get_input_embeddings()(input_ids.to(self.device))

    def scorer(self, asked: ScoreRequest) -> Scorer:
        """The scoring boundary over this model, for perturbations of `asked.reference`."""
        from salience.attribution.scoring import LocalScorer

        return LocalScorer(self, asked)


def eos_ids(value: Any) -> set[int]:
    """A generation config's `eos_token_id` (an id, a list of them, or None) as a set."""
    values = value if isinstance(value, list | tuple) else [value]
    return {v for v in values if isinstance(v, int)}


def resolve_device(device: str = "auto") -> torch.device:
    """cuda, then mps, then cpu unless one is named."""
    if device != "auto":
        try:
            return torch.device(device)
        except RuntimeError as err:
            raise ModelLoadError(f"unknown device {device!r}: use auto, cpu, cuda, cuda:N or mps") from err
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def resolve_dtype(dtype: str, device: torch.device) -> torch.dtype:
    """bf16 on CUDA, fp32 elsewhere, unless named."""
    names = {
        "float32": torch.float32,
        "fp32": torch.float32,
        "bfloat16": torch.bfloat16,
        "bf16": torch.bfloat16,
        "float16": torch.float16,
        "fp16": torch.float16,
    }
    if dtype == "auto":
        return torch.bfloat16 if device.type == "cuda" else torch.float32
    if dtype not in names:
        raise ModelLoadError(f"unknown dtype {dtype!r}: use auto, {', '.join(names)}")
    return names[dtype]


def load_model(
    spec: str | None = None,
    device: str = "auto",
    dtype: str = "auto",
    notify: Notify | None = None,
    placement: Placement | None = None,
    server: ServerOptions | None = None,
) -> LoadedModel:
    """Load `spec` (None or 'default' for the embedded model, a directory, or a .gguf file), or connect to the
    server it names (http://HOST:PORT/v1, with `server`'s options).

    With a `placement` (accelerate's device_map), layers go to their devices instead of `device`.
    """
    if is_served(spec):
        from salience.attribution.remote.served import connect

        return connect(str(spec), server)
    notify = notify or log.info
    placement = placement or Placement()
    directory, model_id = model_directory(spec, notify)
    torch_device = resolve_device(device)
    torch_dtype = resolve_dtype(dtype, torch_device)
    extra = placement.loading_kwargs(cache_root() / "offload" / directory.name)
    try:
        model, tokenizer = _load_directory(directory, torch_dtype, extra)
    except ModelLoadError:
        gguf = None if placement else converted_from(directory)  # a placement error is not a damaged file
        if gguf is None:
            raise
        notify(f"the converted copy of {gguf.name} in {directory} is unreadable: converting it again")
        shutil.rmtree(directory, ignore_errors=True)
        directory = converted_gguf(gguf, notify)
        model, tokenizer = _load_directory(directory, torch_dtype, extra)
    if placement:
        torch_device = input_device(model)
        log.info("%s placed on %s", model_id, ", ".join(devices_used(model)))
    else:
        model.to(torch_device)
    model.eval()
    model.requires_grad_(False)
    return LoadedModel(model, tokenizer, model_id, torch_device, torch_dtype)


def _load_directory(directory: Path, dtype: torch.dtype, extra: dict[str, Any] | None = None) -> tuple[Any, Any]:
    """Load config, tokenizer and weights from a local directory, offline, without remote code."""
    from safetensors import SafetensorError
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    try:
        config = AutoConfig.from_pretrained(directory, local_files_only=True, trust_remote_code=False)
    except (ValueError, KeyError, OSError) as err:
        raise ModelLoadError(f"unsupported or unreadable model config in {directory}: {first_line(err)}") from err
    _check_architecture(config, directory)
    try:
        tokenizer = AutoTokenizer.from_pretrained(directory, local_files_only=True, trust_remote_code=False)
    except Exception as err:  # tokenizers raise many types for a missing or corrupt tokenizer.json
        raise ModelLoadError(
            f"cannot load the tokenizer in {directory} (tokenizer.json missing or unreadable): {first_line(err)}"
        ) from err
    try:
        model, info = AutoModelForCausalLM.from_pretrained(
            directory,
            config=config,
            dtype=dtype,
            local_files_only=True,
            trust_remote_code=False,
            use_safetensors=True,
            output_loading_info=True,
            **(extra or {}),
        )
    except (SafetensorError, ValueError, OSError, RuntimeError) as err:
        hint = (
            "check device_map and max_memory"
            if extra
            else "a corrupt or incomplete *.safetensors file? copy or convert it again"
        )
        raise ModelLoadError(f"cannot load the weights in {directory}: {first_line(err)} ({hint})") from err
    missing = sorted(info.get("missing_keys") or [])
    if missing:
        raise ModelLoadError(
            f"{directory}: missing weights for {len(missing)} parameters (e.g. {missing[0]}); "
            "the checkpoint does not match its config.json"
        )
    return model, tokenizer


def _check_architecture(config: Any, directory: Path) -> None:
    from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES

    if config.model_type not in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES:
        raise ModelLoadError(
            f"{directory}: architecture {config.model_type!r} is not a causal language model supported by "
            "transformers (e.g. llama, mistral, qwen2, gemma, gpt2, phi)"
        )
