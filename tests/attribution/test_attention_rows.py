"""The attention method's recorded rows equal the eager implementation's weights, for every family."""

from __future__ import annotations

import pytest
import torch
from tiny_models import DENSE_SDPA_FAMILIES, tiny_family

from salience.attribution.methods import AttributionInput, get_method
from salience.attribution.methods.attention import Attention, eager_attention

IDS = torch.tensor([[5, 17, 23, 8, 42, 11, 30, 7, 19, 12, 33, 4]])


@pytest.mark.parametrize("family", DENSE_SDPA_FAMILIES)
def test_recorded_rows_are_the_eager_weights(family):
    model = tiny_family(family).model
    with torch.no_grad(), eager_attention(model):
        expected = model(input_ids=IDS, output_attentions=True).attentions
    got = Attention.weights(model, IDS, range(8, 11))
    assert len(got) == len(expected) == model.config.num_hidden_layers
    for mine, theirs in zip(got, expected):
        assert mine.shape == (1, theirs.shape[1], 3, IDS.shape[1])
        assert torch.allclose(mine, theirs[:, :, 8:11], atol=1e-6)
    assert model.config._attn_implementation == "sdpa"  # restored


def test_the_method_keeps_no_square_attention_maps(tiny, tiny_case, monkeypatch):
    """No layer's weights for all query rows: the rows that predict the targets only."""
    source, target = tiny_case
    shapes = []
    original = Attention.weights

    def recorded(model, ids, rows):
        maps = original(model, ids, rows)
        shapes.extend(m.shape for m in maps)
        return maps

    monkeypatch.setattr(Attention, "weights", staticmethod(recorded))
    result = get_method("attention").attribute(
        AttributionInput(tiny, source, [None] * len(source), target), {"layers": "mean"}
    )
    assert {s[2] for s in shapes} == {len(target.ids)}
    ids = torch.tensor([source + target.ids[:-1]])
    with torch.no_grad(), eager_attention(tiny.model):
        maps = tiny.model(input_ids=ids, output_attentions=True).attentions
    n = len(source)
    expected = torch.stack(maps).mean(dim=(0, 2))[0, n - 1 : n + 2, :n]
    assert torch.allclose(torch.tensor(result.matrix), expected, atol=1e-6)
