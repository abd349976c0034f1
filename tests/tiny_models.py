"""Tiny random Llama models for tests: in memory (ids only) or saved like a real local model."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from salience.attribution.model import LoadedModel

TINY = dict(
    vocab_size=64,
    hidden_size=32,
    intermediate_size=64,
    num_attention_heads=4,
    eos_token_id=2,
    bos_token_id=3,
    pad_token_id=1,
)
"""The sizes and special ids every tiny model shares (the ids are `TinyTokenizer`'s)."""


class TinyTokenizer:
    """Just enough tokenizer for methods on the tiny model: ids decode to their numbers."""

    unk_token_id, pad_token_id, eos_token_id, bos_token_id = 0, 1, 2, 3
    mask_token_id = None
    chat_template = None

    def decode(self, ids: list[int]) -> str:
        return " ".join(f"t{i}" for i in ids)

    def convert_tokens_to_ids(self, token: str) -> int:
        return self.unk_token_id


def tiny_llama(seed: int = 0) -> LoadedModel:
    return tiny_family("llama", seed)


def save_tiny_model(directory, config_name: str = "LlamaConfig", **extra) -> None:
    """A tiny random causal LM (a Llama unless `config_name` names another config) with a byte-level fast
    tokenizer, saved like a real local model (safetensors)."""
    import transformers
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import AutoModelForCausalLM, PreTrainedTokenizerFast

    specials = ["<unk>", "<pad>", "<eos>", "<bos>"]
    vocab = {token: i for i, token in enumerate(specials)}
    for char in sorted(pre_tokenizers.ByteLevel.alphabet()):
        vocab[char] = len(vocab)
    backend = Tokenizer(models.BPE(vocab=vocab, merges=[], unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend, unk_token="<unk>", pad_token="<pad>", eos_token="<eos>", bos_token="<bos>"
    )
    torch.manual_seed(0)
    shape = dict(num_key_value_heads=2, tie_word_embeddings=False) if config_name == "LlamaConfig" else {}
    config = getattr(transformers, config_name)(
        **dict(TINY, vocab_size=len(vocab)), num_hidden_layers=2, max_position_embeddings=2048, **shape, **extra
    )
    AutoModelForCausalLM.from_config(config).save_pretrained(directory)
    tokenizer.save_pretrained(directory)


FAMILY_CONFIGS = {
    "llama": ("LlamaConfig", dict(num_key_value_heads=2)),
    "mistral": ("MistralConfig", dict(num_key_value_heads=2)),
    "qwen2": ("Qwen2Config", dict(num_key_value_heads=2)),
    "qwen3": ("Qwen3Config", dict(num_key_value_heads=2, head_dim=8)),
    "gemma": ("GemmaConfig", dict(num_key_value_heads=2, head_dim=8, hidden_act="gelu_pytorch_tanh")),
    "phi": ("PhiConfig", dict(partial_rotary_factor=0.5, resid_pdrop=0.1)),
    "gpt2": ("GPT2Config", dict(n_embd=32, n_layer=2, n_head=4, n_positions=128, resid_pdrop=0.1)),
    "gemma2": (
        "Gemma2Config",
        dict(
            num_key_value_heads=2,
            head_dim=8,
            sliding_window=4,
            final_logit_softcapping=0.1,
            attn_logit_softcapping=0.02,
        ),
    ),
    "gemma3_text": (
        "Gemma3TextConfig",
        dict(num_key_value_heads=2, head_dim=8, sliding_window=4, final_logit_softcapping=0.1),
    ),
    "gemma3": (
        "Gemma3Config",
        dict(
            text_config=dict(num_key_value_heads=2, head_dim=8, sliding_window=4),
            vision_config=dict(
                hidden_size=16,
                intermediate_size=32,
                num_hidden_layers=1,
                num_attention_heads=2,
                image_size=32,
                patch_size=8,
            ),
            mm_tokens_per_image=4,
        ),
    ),
    "phi3": ("Phi3Config", dict(num_key_value_heads=2, resid_pdrop=0.1)),
    "smollm3": ("SmolLM3Config", dict(num_key_value_heads=2, no_rope_layer_interval=2)),
    "olmo2": ("Olmo2Config", dict(num_key_value_heads=2)),
    "granite": (
        "GraniteConfig",
        dict(
            num_key_value_heads=2,
            embedding_multiplier=2.0,
            residual_multiplier=0.5,
            attention_multiplier=0.3,
            logits_scaling=4.0,
        ),
    ),
    "qwen3_moe": (
        "Qwen3MoeConfig",
        dict(num_key_value_heads=2, head_dim=8, num_experts=4, num_experts_per_tok=2, moe_intermediate_size=16),
    ),
    "mixtral": ("MixtralConfig", dict(num_key_value_heads=2, num_local_experts=4, num_experts_per_tok=2)),
    "gpt_oss": (
        "GptOssConfig",
        dict(num_key_value_heads=2, head_dim=8, num_local_experts=4, num_experts_per_tok=2, sliding_window=4),
    ),
    "olmoe": ("OlmoeConfig", dict(num_key_value_heads=2, num_experts=4, num_experts_per_tok=2)),
}
"""Tiny random configs of every family AttnLRP supports (dropout set where the family has it; Gemma 2 and 3
with a sliding window shorter than the tests' sequences, and caps near a tiny model's logits (about 0.1) and
attention scores (about 0.02), so that the soft-caps bend them)."""
MIXTURES = ("qwen3_moe", "mixtral", "olmoe", "gpt_oss")
"""Mixture-of-experts families: their experts run grouped matmuls, which have no forward-mode AD (SIG)."""
EAGER_ONLY = ("gemma2", "gpt_oss")
"""Attention SDPA cannot compute (soft-capped scores, learned sinks): eager attention only."""
MULTIMODAL = ("gemma3",)
"""A checkpoint with an image encoder beside its text model (its config nests the text model's)."""
DENSE_SDPA_FAMILIES = sorted(set(FAMILY_CONFIGS) - set(MIXTURES + EAGER_ONLY + MULTIMODAL))
"""The families that the methods written for dense SDPA decoders (SIG, attention rows, chunked attention) test on."""


def tiny_family(family: str, seed: int = 0) -> LoadedModel:
    """A tiny random causal LM of `family` (see FAMILY_CONFIGS), eval mode, frozen, fp32."""
    import transformers

    config_name, extra = FAMILY_CONFIGS[family]
    common = dict(TINY, num_hidden_layers=2, max_position_embeddings=128)
    if "text_config" in extra:  # a multimodal checkpoint: the tiny sizes are its text model's
        extra = {**extra, "text_config": {**common, **extra["text_config"]}}
    config = getattr(transformers, config_name)(**extra if "text_config" in extra else {**common, **extra})
    torch.manual_seed(seed)
    model = transformers.AutoModelForCausalLM.from_config(config)  # SDPA where the family has it, else eager
    return LoadedModel(
        model.eval().requires_grad_(False), TinyTokenizer(), f"tiny-{family}", torch.device("cpu"), torch.float32
    )


COPY_LOSS_STOP = 0.01
"""Training stops once the held-out loss is below this (measured: by step 300, 1 or 2 threads)."""
COPY_LOSS_NEEDED = 0.05
"""What the tests rely on: mean p(copied token) of 0.95 or more; five times the stopping loss."""
COPY_STEPS_CAP = 2000
"""Seven times the steps it took here: a slower phase transition on another CPU still finishes."""


@dataclass(frozen=True)
class Copying:
    """A model trained to copy, and how many steps that took (reported in the test output)."""

    loaded: LoadedModel
    steps: int


def copying_llama(copied: int = 3, length: int = 8, seed: int = 0) -> Copying:
    """A tiny Llama trained (in about a second) to predict, after `length` tokens, the token at `copied`.

    A planted dependency: its next-token prediction relies on one source position only. Trained until
    its loss on held-out sequences is below COPY_LOSS_STOP, not for a fixed step count, which stops
    mid phase transition on some CPUs; an error names the loss if COPY_STEPS_CAP comes first.
    """
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    config = LlamaConfig(**TINY, num_hidden_layers=1, num_key_value_heads=4, max_position_embeddings=64)
    model = LlamaForCausalLM(config)
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-2)
    held_out = torch.randint(4, 64, (256, length), generator=torch.Generator().manual_seed(seed + 1))
    for step in range(1, COPY_STEPS_CAP + 1):
        ids = torch.randint(4, 64, (32, length))
        loss = copy_loss(model, ids, copied)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        if step % 25 == 0:
            with torch.no_grad():  # a measurement, not a training step: no graph to keep
                held = float(copy_loss(model, held_out, copied))
            if held < COPY_LOSS_STOP:
                break
    else:
        raise AssertionError(f"the copying model's held-out loss is {held:.3f} after {step} steps")
    loaded = LoadedModel(
        model.eval().requires_grad_(False), TinyTokenizer(), "tiny-copying", torch.device("cpu"), torch.float32
    )
    return Copying(loaded, step)


def copy_loss(model, ids: torch.Tensor, copied: int) -> torch.Tensor:
    """Cross-entropy of the last position's prediction against the token at `copied`."""
    logits = model(input_ids=ids, logits_to_keep=1).logits[:, -1]
    return torch.nn.functional.cross_entropy(logits, ids[:, copied])
