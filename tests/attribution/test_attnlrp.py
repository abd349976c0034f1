"""AttnLRP: conservation where the rules are exact, scoping to one call and one model, real-model sanity."""

from __future__ import annotations

import pytest
import torch
from tiny_models import FAMILY_CONFIGS, tiny_family

from salience.attribution.errors import ModelLoadError
from salience.attribution.methods import AttributionInput, get_method
from salience.attribution.methods.lrp.architectures import attnlrp_rules
from salience.attribution.targets import Target

FAMILIES = sorted(FAMILY_CONFIGS)
ATTENTION_OUTPUTS = ("o_proj.weight", "attn.c_proj.weight", "self_attn.dense.weight")
CONSERVATION_TOLERANCE = 1e-5  # relative to |logit|, fp32
SOURCE = [5, 17, 23, 8, 42, 11, 30, 7, 19]
TARGET = Target([12, 33, 4], [None, None, None], generated=False)


def without_biases_and_attention(loaded):
    """Zero what LRP cannot conserve: biases, GPT-2's position embeddings, and (optionally) attention
    outputs, whose softmax absorbs relevance by design (AttnLRP's softmax rule is not conservative)."""
    for name, parameter in loaded.model.named_parameters():
        if name.endswith("bias") or "wpe" in name or name.endswith(ATTENTION_OUTPUTS):
            parameter.data.zero_()
    return loaded


def attnlrp(loaded, source=SOURCE, target=TARGET, **params):
    inputs = AttributionInput(loaded, source, [None] * len(source), target)
    return get_method("attnlrp").attribute(inputs, params)


def logits_of(loaded, ids):
    with torch.no_grad():
        return loaded.model(input_ids=torch.tensor([ids])).logits


@pytest.mark.parametrize("family", FAMILIES)
def test_relevance_is_conserved_where_the_rules_are_exact(family):
    """Norms, activations, gated products, residuals, embeddings and the head conserve the logit."""
    loaded = without_biases_and_attention(tiny_family(family))
    result = attnlrp(loaded)
    sequence = SOURCE + TARGET.ids[:-1]
    logits = logits_of(loaded, sequence)[0, len(SOURCE) - 1 :]
    for step, (total, token) in enumerate(zip(result.extras["relevance_sum"], TARGET.ids)):
        logit = logits[step, token].item()
        assert abs(total - logit) <= CONSERVATION_TOLERANCE * max(1.0, abs(logit)), (family, step, total, logit)


@pytest.mark.parametrize("family", FAMILIES)
def test_model_computes_exactly_as_before_after_the_call(family):
    loaded = tiny_family(family)
    sequence = SOURCE + TARGET.ids
    before = logits_of(loaded, sequence)
    implementation = loaded.model.config._attn_implementation
    result = attnlrp(loaded)
    assert torch.equal(logits_of(loaded, sequence), before)
    assert loaded.model.config._attn_implementation == implementation
    assert not any("forward" in m.__dict__ for m in loaded.model.modules())
    assert torch.tensor(result.matrix).abs().max() > 0


def test_rules_stay_on_their_model_and_are_undone_after_an_error():
    explained, other = tiny_family("llama", seed=1), tiny_family("llama", seed=2)
    sequence = SOURCE + TARGET.ids
    other_before = logits_of(other, sequence)
    with pytest.raises(RuntimeError, match="inside"), attnlrp_rules(explained.model):
        assert "forward" in explained.model.model.norm.__dict__
        assert explained.model.config._attn_implementation == "salience_attnlrp"
        assert torch.equal(logits_of(other, sequence), other_before)
        assert not any("forward" in m.__dict__ for m in other.model.modules())
        raise RuntimeError("inside")
    assert not any("forward" in m.__dict__ for m in explained.model.modules())
    assert explained.model.config._attn_implementation == "sdpa"


@pytest.mark.parametrize("family", FAMILIES)
def test_rules_change_the_gradient_not_the_forward(family):
    """The rules' own forwards (explicit attention, experts, soft-caps) compute what the model's do."""
    loaded = tiny_family(family)
    sequence = SOURCE + TARGET.ids
    before = logits_of(loaded, sequence)
    with attnlrp_rules(loaded.model):
        inside = logits_of(loaded, sequence)
    assert (inside - before).abs().max() < 1e-5


def test_checkpointing_gives_the_same_relevance():
    loaded = tiny_family("qwen3")
    plain, checkpointed = attnlrp(loaded), attnlrp(loaded, checkpointing=True)
    assert torch.allclose(torch.tensor(plain.matrix), torch.tensor(checkpointed.matrix), atol=1e-6)


def test_contrast_explains_the_logit_difference():
    loaded = without_biases_and_attention(tiny_family("llama"))
    target = Target(TARGET.ids, [9, None, 50], generated=False)
    result = attnlrp(loaded, target=target)
    logits = logits_of(loaded, SOURCE + target.ids[:-1])[0, len(SOURCE) - 1 :]
    expected = logits[0, 12] - logits[0, 9]
    assert abs(result.extras["relevance_sum"][0] - expected.item()) <= CONSERVATION_TOLERANCE * max(1.0, abs(expected))


def test_unsupported_architecture_names_the_supported_ones():
    import transformers

    config = transformers.GPTNeoXConfig(
        vocab_size=64, hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=4
    )
    model = transformers.AutoModelForCausalLM.from_config(config).eval()
    covered = "attnlrp does not cover gpt_neox; it covers llama, mistral"
    with pytest.raises(ModelLoadError, match=covered), attnlrp_rules(model):
        pass


def test_a_module_class_without_a_rule_is_an_error_not_a_plain_gradient(monkeypatch):
    """A supported architecture whose module class is missing from its table (a renamed norm, a new block in
    another transformers version) is refused by name, before anything runs."""
    from salience.attribution.methods.lrp import architectures

    table = {k: v for k, v in architectures.ARCHITECTURES["llama"].items() if k != "LlamaRMSNorm"}
    monkeypatch.setitem(architectures.ARCHITECTURES, "llama", table)
    loaded = tiny_family("llama")
    with pytest.raises(ModelLoadError, match="attnlrp has no rule for LlamaRMSNorm in this llama model"):
        attnlrp(loaded)
    from salience.attribution.methods import default_method, fallback_note

    assert default_method(loaded) == "input_x_gradient"
    assert fallback_note(loaded).startswith("attnlrp has no rule for LlamaRMSNorm in this llama model; showing")


@pytest.mark.embedded
def test_on_the_embedded_model_attnlrp_is_not_input_x_gradient(embedded, margin):
    ids = embedded.tokenizer(
        "The code for the red door is 7733. The code for the blue door is 4812. The code for the red door is"
    )["input_ids"]
    target = Target([embedded.tokenizer(" 7")["input_ids"][0]], [None], generated=False)
    inputs = AttributionInput(embedded, ids, [None] * len(ids), target)
    lrp = torch.tensor(get_method("attnlrp").attribute(inputs).aggregate)
    ixg = torch.tensor(get_method("input_x_gradient").attribute(inputs).aggregate)
    assert torch.isfinite(lrp).all()
    margin("AttnLRP vs input x gradient, Pearson", float(torch.corrcoef(torch.stack([lrp, ixg]))[0, 1]), below=0.99)


@pytest.mark.embedded
def test_on_the_embedded_model_only_the_softmax_absorbs_relevance(embedded, margin):
    """Layer by layer (benchmarks/conservation.py): the value path, the MLPs, the norms, the head and the
    embeddings hand on all they receive; what the heatmap lacks of the logit is the softmax rule's."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parents[2] / "benchmarks"))
    from conservation import measure

    ids = embedded.tokenizer(
        "The code for the red door is 7733. The code for the blue door is 4812. The code for the red door is"
    )["input_ids"]
    target = [embedded.tokenizer(" 7")["input_ids"][0]]
    m = measure(embedded, ids, target, 0)
    exact = sum(m["values"]) + sum(m["mlp"]) + m["head"] + m["below"]
    margin("relevance lost outside the softmax, share of the logit", abs(exact) / abs(m["logit"]), below=1e-3)
    unexplained = (m["logit"] - m["embeddings"] - sum(m["softmax"])) / m["logit"]
    margin("logit - heatmap total - softmax's loss, share of the logit", abs(unexplained), below=1e-3)


def test_attention_splits_the_gradient_over_query_key_and_value():
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    from salience.attribution.methods.lrp.rules import attnlrp_attention

    module = tiny_family("llama").model.model.layers[0].self_attn
    generator = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(1, 4, 6, 8, generator=generator) for _ in range(3))
    k, v = k[:, :2], v[:, :2]  # grouped-query attention: 4 query heads share 2 key/value heads

    def grads(attention):
        leaves = [t.clone().requires_grad_(True) for t in (q, k, v)]
        out, _ = attention(module, *leaves, None, scaling=8**-0.5, is_causal=True)
        return torch.autograd.grad(out.pow(2).sum(), leaves)

    plain, lrp = grads(sdpa_attention_forward), grads(attnlrp_attention)
    for factor, a, b in zip((0.25, 0.25, 0.5), plain, lrp):
        assert torch.allclose(b, factor * a, atol=1e-6)


def test_default_method_falls_back_where_attnlrp_cannot_explain_the_model():
    import transformers

    from salience.attribution import DEFAULT_METHOD, FALLBACK_METHOD, default_method
    from salience.attribution.model import LoadedModel

    assert DEFAULT_METHOD == "attnlrp" and default_method(tiny_family("phi")) == "attnlrp"
    config = transformers.GPTNeoXConfig(
        vocab_size=64, hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=4
    )
    neox = LoadedModel(
        transformers.AutoModelForCausalLM.from_config(config).eval(),
        None,
        "tiny-neox",
        torch.device("cpu"),
        torch.float32,
    )
    assert default_method(neox) == FALLBACK_METHOD


@pytest.mark.parametrize("family", ["gemma2", "gemma3_text", "qwen3_moe", "gpt_oss", "phi3", "olmo2"])
def test_a_saved_model_of_a_new_family_loads_and_gets_attnlrp_by_default(family, tmp_path):
    """As a user's folder: loading picks the attention each family has (eager for Gemma 2 and gpt-oss), and
    the default method is AttnLRP, no fallback."""
    from tiny_models import save_tiny_model

    from salience.attribution import Request, explain, load_model, parse_prompt

    config_name, extra = FAMILY_CONFIGS[family]
    save_tiny_model(tmp_path, config_name, **extra)
    loaded = load_model(str(tmp_path))
    assert loaded.model.config._attn_implementation == ("eager" if family in ("gemma2", "gpt_oss") else "sdpa")
    result = explain(loaded, parse_prompt("The door code is 7733. Which code?"), Request(target=" 7733"))
    assert result.method == "attnlrp" and "fallback" not in result.extras
    assert len(result.extras["explained"]) == len(result.target_ids)
