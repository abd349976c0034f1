"""Models across devices (accelerate's device_map): every method gives the same scores as on one device.

On CPU the layers are split between the CPU and "disk" (offloaded: weights on the meta device,
brought in by accelerate's hooks for each forward), which is the code path a model larger than
its GPUs takes.
"""

from __future__ import annotations

import pytest
import torch

from salience.attribution import Request, explain, load_model, method_names, parse_prompt
from salience.attribution.errors import ModelLoadError
from salience.attribution.placement import Placement, devices_used, parse_max_memory

PROMPT = parse_prompt("Document 1: the red door code is 7733.\n\nQuestion: the red door code?")
SPLIT = {
    "model.embed_tokens": "cpu",
    "model.rotary_emb": "cpu",
    "model.layers.0": "cpu",
    "model.layers.1": "disk",
    "model.norm": "disk",
    "lm_head": "disk",
}
QUICK = {
    "integrated_gradients": {"steps": 4},
    "sequential_integrated_gradients": {"steps": 2},
    "reagent": {"max_steps": 20, "probes": 2},
    "textgenshap": {"level": "segment"},
    "lime": {"n_samples": 16},
    "kernelshap": {"n_samples": 16},
}


@pytest.fixture(scope="module")
def models(tiny_model_dir, tmp_path_factory):
    with pytest.MonkeyPatch.context() as patch:  # the offload folder; later tests keep the worker's cache
        patch.setenv("SALIENCE_CACHE", str(tmp_path_factory.mktemp("cache")))
        yield load_model(str(tiny_model_dir)), load_model(str(tiny_model_dir), placement=Placement.of(SPLIT))


def test_the_split_model_really_is_offloaded(models):
    _, placed = models
    assert devices_used(placed.model) == ["cpu", "disk"] and placed.device == torch.device("cpu")
    assert placed.model.model.layers[1].self_attn.q_proj.weight.device.type == "meta"


@pytest.mark.parametrize("method", method_names())
def test_every_method_gives_the_same_scores_across_devices(models, method):
    plain, placed = models
    request = Request(method=method, params=QUICK.get(method), max_new_tokens=2)
    one, split = explain(plain, PROMPT, request), explain(placed, PROMPT, request)
    assert one.target_ids == split.target_ids
    assert torch.allclose(torch.tensor(split.aggregate), torch.tensor(one.aggregate), atol=1e-5), method


def test_auto_with_a_memory_limit_offloads(tiny_model_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("SALIENCE_CACHE", str(tmp_path))
    placed = load_model(str(tiny_model_dir), placement=Placement.of("auto", {"cpu": "40KB"}))
    assert "disk" in devices_used(placed.model)
    assert explain(placed, PROMPT, Request(method="saliency", max_new_tokens=1)).aggregate


def test_placements_are_checked():
    assert Placement.of('{"model": 0}').device_map == (("model", 0),)
    assert parse_max_memory("0=20GiB, cpu=64GiB") == {"0": "20GiB", "cpu": "64GiB"}
    for bad in ("everywhere", "{not json"):
        with pytest.raises(ModelLoadError, match="device_map"):
            Placement.of(bad)
    with pytest.raises(ModelLoadError, match="DEVICE=SIZE"):
        parse_max_memory("lots")
    from salience.server.settings import Settings

    assert Settings.model_validate({"deviceMap": "auto", "maxMemory": {"cpu": "1GiB"}}).placement() == Placement(
        "auto", (("cpu", "1GiB"),)
    )


@pytest.mark.parametrize("method", ["saliency", "input_x_gradient", "integrated_gradients", "attnlrp"])
def test_long_prompts_checkpoint_the_layers_and_keep_the_scores(models, method, monkeypatch):
    from salience.attribution.compute import batching, patching

    plain, placed = models
    request = Request(method=method, params=QUICK.get(method), max_new_tokens=2)
    expected = explain(plain, PROMPT, request)
    calls = []
    original = patching.checkpointed_layers

    def counted(model):
        calls.append(model)
        return original(model)

    monkeypatch.setattr(batching, "checkpointed_layers", counted)
    mapped = []
    original_mapped = batching.large_blocks_mapped

    def counted_mapped():
        mapped.append(True)
        return original_mapped()

    monkeypatch.setattr(batching, "large_blocks_mapped", counted_mapped)
    monkeypatch.setattr(batching, "CHECKPOINT_TOKENS", 8)  # this prompt counts as long
    monkeypatch.setattr(batching, "MAPPED_TOKENS", 8)
    for loaded in (plain, placed):  # on one device, and with layers offloaded to disk
        result = explain(loaded, PROMPT, request)
        assert torch.allclose(torch.tensor(result.aggregate), torch.tensor(expected.aggregate), atol=1e-5)
    assert len(calls) >= 2 and len(mapped) == len(calls)  # freed activations go back to the system too
