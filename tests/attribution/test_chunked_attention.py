"""Attention in blocks of query rows gives the model's own outputs, with and without a KV cache."""

from __future__ import annotations

import pytest
import torch
from tiny_models import DENSE_SDPA_FAMILIES, tiny_family

from salience.attribution.compute.patching import attention_implementation
from salience.attribution.methods import AttributionInput, get_method
from salience.attribution.methods.sig import chunked_attention
from salience.attribution.methods.sig.chunked_attention import CHUNKED

IDS = torch.tensor([[5, 17, 23, 8, 42, 11, 30, 7, 19, 12, 33, 4]])


@pytest.fixture
def counted_blocks(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Blocks of one or two query rows; the row counts of every block run."""
    monkeypatch.setattr(chunked_attention, "BLOCK_BYTES", 1)
    rows: list[int] = []
    original = chunked_attention.sdpa_attention_forward

    def counted(module, query, *args, **kwargs):
        rows.append(query.shape[2])
        return original(module, query, *args, **kwargs)

    monkeypatch.setattr(chunked_attention, "sdpa_attention_forward", counted)
    return rows


@pytest.mark.parametrize("family", DENSE_SDPA_FAMILIES)
def test_blocks_of_queries_give_the_same_logits(family, counted_blocks):
    model = tiny_family(family).model
    with torch.no_grad():
        expected = model(input_ids=IDS).logits
        with attention_implementation(model, CHUNKED):
            got = model(input_ids=IDS).logits
    assert counted_blocks and max(counted_blocks) == 1
    assert torch.allclose(got, expected, atol=1e-5)


def test_blocks_after_a_kv_cache_and_with_padding(tiny, counted_blocks):
    model = tiny.model
    batch = torch.cat([IDS, IDS.flip(1)])
    mask = torch.ones_like(batch)
    mask[1, :3] = 0  # left padding in the second row: the model's own mask, cut into rows
    with torch.no_grad():
        expected = model(input_ids=batch, attention_mask=mask).logits[:, 5:]
        prefix = model(input_ids=batch[:, :5], attention_mask=mask[:, :5], use_cache=True).cache
        with attention_implementation(model, CHUNKED):
            got = model(input_ids=batch[:, 5:], attention_mask=mask, cache=prefix).logits
    assert counted_blocks
    assert torch.allclose(got, expected, atol=1e-5)


def test_sig_scores_do_not_change_when_its_attention_runs_in_blocks(tiny, tiny_case, counted_blocks):
    source, target = tiny_case
    inputs = AttributionInput(tiny, source, [(2 * i, 2 * i + 1) for i in range(len(source))], target)
    params = {"steps": 4, "granularity": "token", "normalise": False}
    chunked = torch.tensor(get_method("sequential_integrated_gradients").attribute(inputs, params).matrix)
    assert counted_blocks and max(counted_blocks) == 1
    counted_blocks.clear()
    chunked_attention.BLOCK_BYTES = 1 << 30  # (monkeypatch restores it) one block: the plain call
    plain = torch.tensor(get_method("sequential_integrated_gradients").attribute(inputs, params).matrix)
    assert counted_blocks and min(counted_blocks) > 1
    assert torch.allclose(chunked, plain, atol=1e-5)
    assert plain.abs().max() > 1e-3


def test_block_rows_fit_the_budget() -> None:
    query = torch.zeros(2, 9, 8000, 64)
    rows = chunked_attention.block_rows(query, 8000, 64 << 20)
    assert rows * 2 * 9 * 8000 * 4 <= 64 << 20 < (rows + 1) * 2 * 9 * 8000 * 4
    assert chunked_attention.block_rows(query, 8000, 1) == 1


def test_causal_blocks_after_cached_keys_see_their_own_prefix(counted_blocks):
    """No mask and fewer queries than keys: query i sits after the cached keys, as a decoder's does."""
    generator = torch.Generator().manual_seed(0)
    query, key, value = (torch.randn(1, 2, n, 4, generator=generator) for n in (3, 7, 7))
    module = torch.nn.Module()
    got, _ = chunked_attention.chunked_attention(module, query, key, value, None, scaling=0.5)
    scores = (query @ key.transpose(-1, -2)) * 0.5
    seen = torch.arange(7) <= (torch.arange(3) + 4).unsqueeze(1)
    expected = scores.masked_fill(~seen, float("-inf")).softmax(-1) @ value
    assert counted_blocks == [1, 1, 1]
    assert torch.allclose(got, expected.transpose(1, 2), atol=1e-6)
