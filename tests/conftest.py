"""Shared fixtures: a tiny random Llama (milliseconds) and the embedded model (loaded once)."""

from __future__ import annotations

import pytest
import torch

from salience.attribution.model import LoadedModel
from salience.attribution.targets import Target


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
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    config = LlamaConfig(vocab_size=64, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=128,
                         eos_token_id=2, bos_token_id=3, pad_token_id=1)
    model = LlamaForCausalLM(config).eval().requires_grad_(False)
    return LoadedModel(model, TinyTokenizer(), "tiny-llama", torch.device("cpu"), torch.float32)


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
