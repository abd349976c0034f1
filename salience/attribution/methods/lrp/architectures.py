"""Which AttnLRP rule each module class of an architecture gets: one small table per model type.

A class maps to a rule (`rules.py`) or to `PLAIN`: its operations are linear, or containers whose parts have
their own entries, or (attention modules) they compute attention through the registered attention function,
where the attention rule is. Every module of a model must be in its architecture's table or in `COMMON`:
an unknown class is an error naming it, never a silent plain gradient. Loading needs nothing special:
transformers picks SDPA where a family supports it and eager attention otherwise (Gemma 2, gpt-oss), and
the rules replace either with their own attention function for the call.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager

from torch import nn

from salience.attribution.compute.patching import attention_implementation, checkpointed_layers
from salience.attribution.errors import ModelLoadError
from salience.attribution.methods.lrp.rules import (
    ATTENTION,
    Rule,
    constant_router,
    fused_experts,
    fused_gated_mlp,
    gated_mlp,
    identity,
    interleaved_experts,
    layer_norm,
    soft_capped_head,
)

Table = dict[str, "Rule | None"]
"""Module class name → its rule, or PLAIN."""
PLAIN = None
"""The plain gradient is the rule: linear operations, containers, rotary embeddings, attention modules."""

ACTIVATIONS = ("SiLUActivation", "SiLU", "GELUTanh", "GELUActivation", "NewGELUActivation", "PytorchGELUTanh",
               "FastGELUActivation", "QuickGELUActivation", "GELU", "ReLU", "Tanh")  # fmt: skip
COMMON: Table = {
    "Linear": PLAIN,
    "Conv1D": PLAIN,  # GPT-2's linear layers
    "Embedding": PLAIN,
    "ModuleList": PLAIN,
    "Dropout": PLAIN,  # off: the rules run in eval mode
    "LayerNorm": layer_norm,
    **dict.fromkeys(ACTIVATIONS, identity),
}


def decoder(prefix: str, mlp: Rule | None = gated_mlp, *, model: str = "Model", **more: Rule | None) -> Table:
    """The table of a Llama-shaped decoder whose classes are named `prefix`…: RMSNorms (q/k norms too), rotary
    embeddings, attention through the attention interface, and `mlp` for its MLP."""
    return {
        f"{prefix}ForCausalLM": PLAIN,
        f"{prefix}{model}": PLAIN,
        f"{prefix}DecoderLayer": PLAIN,
        f"{prefix}Attention": PLAIN,
        f"{prefix}RotaryEmbedding": PLAIN,
        f"{prefix}RMSNorm": identity,
        f"{prefix}MLP": mlp,
        **more,
    }


def mixture(prefix: str) -> Table:
    """A decoder whose MLPs are mixtures of experts stored as fused tensors (Qwen3-MoE, Mixtral, OLMoE)."""
    return decoder(
        prefix,
        **{f"{prefix}SparseMoeBlock": PLAIN, f"{prefix}Experts": fused_experts, f"{prefix}TopKRouter": constant_router},
    )


def gemma(prefix: str, model: str = "Model") -> Table:
    """Gemma: scaled embeddings; Gemma 2 and 3 soft-cap their logits (and attention scores: the attention rule)."""
    return decoder(
        prefix,
        model=model,
        **{f"{prefix}ForCausalLM": soft_capped_head, f"{prefix}TextScaledWordEmbedding": PLAIN},
    )


VISION_TOWER: Table = dict.fromkeys(
    ("SiglipVisionModel", "SiglipVisionEmbeddings", "SiglipEncoder", "SiglipEncoderLayer", "SiglipAttention",
     "SiglipMLP", "SiglipMultiheadAttentionPoolingHead", "MultiheadAttention", "NonDynamicallyQuantizableLinear",
     "Conv2d", "AvgPool2d"),
    PLAIN,
)  # fmt: skip
"""A multimodal checkpoint's image encoder: a text prompt never runs it."""

ARCHITECTURES: dict[str, Table] = {
    "llama": decoder("Llama"),
    "mistral": decoder("Mistral"),
    "qwen2": decoder("Qwen2"),
    "qwen3": decoder("Qwen3"),
    "smollm3": decoder("SmolLM3"),
    "olmo2": decoder("Olmo2"),  # norms after attention and MLP, q/k norms over all heads: all RMSNorm
    "granite": decoder("Granite"),  # its multipliers scale linear paths (and the attention scores)
    "phi3": decoder("Phi3", fused_gated_mlp),
    "gemma": gemma("Gemma"),
    "gemma2": gemma("Gemma2"),
    "gemma3_text": gemma("Gemma3", model="TextModel"),
    "gemma3": {  # a multimodal checkpoint: the text model as gemma3_text's, under a head that does not soft-cap
        **gemma("Gemma3", model="TextModel"),
        **VISION_TOWER,
        **dict.fromkeys(("Gemma3ForConditionalGeneration", "Gemma3Model", "Gemma3MultiModalProjector"), PLAIN),
    },
    "qwen3_moe": mixture("Qwen3Moe"),
    "mixtral": mixture("Mixtral"),
    "olmoe": mixture("Olmoe"),
    "gpt_oss": decoder(  # attention with learned sinks (the attention rule); every MLP a mixture
        "GptOss", PLAIN, GptOssExperts=interleaved_experts, GptOssTopKRouter=constant_router
    ),
    "phi": decoder("Phi", PLAIN),  # LayerNorms (in COMMON); its MLP is fc1, act, fc2
    "gpt2": dict.fromkeys(("GPT2LMHeadModel", "GPT2Model", "GPT2Block", "GPT2Attention", "GPT2MLP"), PLAIN),
}  # fmt: skip
SUPPORTED_TYPES = tuple(ARCHITECTURES)


def model_type(model: nn.Module) -> str | None:
    return getattr(model.config, "model_type", None)


def coverage_gap(model: nn.Module) -> str | None:
    """Why the rules do not cover `model` ("does not cover gpt_neox", "has no rule for X in this llama
    model"), or None where they do."""
    kind = model_type(model)
    if kind not in ARCHITECTURES:
        return f"does not cover {kind or type(model).__name__}"
    unknown = sorted({type(m).__name__ for m in model.modules()} - {**COMMON, **ARCHITECTURES[kind]}.keys())
    return f"has no rule for {', '.join(unknown)} in this {kind} model" if unknown else None


def rules_of(model: nn.Module) -> list[tuple[nn.Module, Rule]]:
    """Each module of `model` with a rule, from its architecture's table; an error says what is not covered."""
    gap = coverage_gap(model)
    if gap is not None:
        raise ModelLoadError(f"attnlrp {gap}; it covers {', '.join(SUPPORTED_TYPES)} (SmolLM2 is llama)")
    table = {**COMMON, **ARCHITECTURES[model_type(model) or ""]}
    return [(m, rule) for m in model.modules() if (rule := table[type(m).__name__]) is not None]


@contextmanager
def attnlrp_rules(model: nn.Module, checkpointing: bool = False) -> Iterator[None]:
    """Apply the rules to `model` (and optionally checkpoint each layer) inside the block only."""
    rules = rules_of(model)
    with ExitStack() as stack:
        for module, rule in rules:
            for change in rule(module):
                stack.enter_context(change)
        if checkpointing:
            stack.enter_context(checkpointed_layers(model))
        stack.enter_context(attention_implementation(model, ATTENTION))
        stack.enter_context(_eval_mode(model))
        yield


@contextmanager
def _eval_mode(model: nn.Module) -> Iterator[None]:
    """Dropout off for the call."""
    was_training = model.training
    model.eval()
    try:
        yield
    finally:
        model.train(was_training)
