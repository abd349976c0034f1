"""ReAGent: the planted dependency, reproducibility, replacements within the real vocabulary, the
stopping rule's bookkeeping, KV-cached rows, and rank agreement with Inseq on the embedded model."""

from __future__ import annotations

import json
from pathlib import Path
from typing import ClassVar

import pytest
import torch
from tiny_models import COPY_LOSS_NEEDED, Copying, copy_loss, copying_llama

from salience.attribution import get_method
from salience.attribution.errors import Cancelled, ParameterError
from salience.attribution.methods import AttributionInput, Hooks
from salience.attribution.methods.reagent.reagent import ReAGentParams, _Run
from salience.attribution.methods.reagent.replacement import (
    allowed_ids,
    model_replacements,
    uniform_replacements,
)
from salience.attribution.model import LoadedModel
from salience.attribution.scoring import LocalScorer, ScoreRequest
from salience.attribution.targets import Target

QUICK = {"probes": 8, "max_steps": 60}

REFERENCE = Path(__file__).parents[1] / "data" / "reference"


@pytest.fixture(scope="module")
def trained() -> Copying:
    return copying_llama(copied=3, length=8)


@pytest.fixture(scope="module")
def copying(trained) -> LoadedModel:
    return trained.loaded


def test_the_copying_model_learned_its_copy_with_a_margin(trained, margin):
    """The planted dependency the tests below rely on, on sequences it was neither trained nor stopped on."""
    fresh = torch.randint(4, 64, (1024, 8), generator=torch.Generator().manual_seed(99))
    with torch.no_grad():
        loss = float(copy_loss(trained.loaded.model, fresh, copied=3))
    margin(f"copying model, loss on fresh sequences after {trained.steps} steps", loss, below=COPY_LOSS_NEEDED)


def copy_case(loaded: LoadedModel, seed: int = 5) -> tuple[list[int], Target]:
    source = torch.randint(4, 64, (8,), generator=torch.Generator().manual_seed(seed)).tolist()
    with torch.no_grad():
        predicted = int(loaded.model(input_ids=torch.tensor([source])).logits[0, -1].argmax())
    assert predicted == source[3], "the copying model did not learn its copy"
    return source, Target([predicted], [None], generated=True)


def attribute(loaded, source, target, ranges=None, **params):
    ranges = ranges or [(i, i + 1) for i in range(len(source))]
    return get_method("reagent").attribute(AttributionInput(loaded, source, ranges, target), params)


@pytest.mark.parametrize("replacement", ["uniform", "model"])
def test_a_copied_token_ranks_first(copying, replacement):
    source, target = copy_case(copying)
    result = attribute(copying, source, target, replacement=replacement, **QUICK)
    row = result.matrix[0]
    assert max(range(len(row)), key=row.__getitem__) == 3, row
    assert result.extras["converged"] == [True]
    assert abs(sum(row) - 1.0) < 1e-5  # a distribution over the tokens y_1 can see


def test_same_seed_same_scores_other_seed_other_scores(copying):
    source, target = copy_case(copying)
    first = attribute(copying, source, target, seed=1, **QUICK).matrix
    assert attribute(copying, source, target, seed=1, **QUICK).matrix == first
    assert attribute(copying, source, target, seed=2, **QUICK).matrix != first


def test_batch_size_does_not_change_the_scores(tiny, tiny_case):
    source, target = tiny_case
    ranges = [None, None] + [(i, i + 1) for i in range(len(source) - 2)]  # template tokens: a cached prefix
    big = attribute(tiny, source, target, ranges, **QUICK)
    small = attribute(tiny, source, target, ranges, memory_budget_mb=16, **QUICK)
    assert torch.allclose(torch.tensor(big.matrix), torch.tensor(small.matrix), atol=1e-6)
    assert all(row[0] == row[1] == 0.0 for row in big.matrix)  # template tokens are never replaced


def test_rows_from_the_kv_cache_equal_full_forwards(tiny, tiny_case):
    source, target = tiny_case
    inputs = AttributionInput(tiny, source, [None] + [(i, i + 1) for i in range(len(source) - 1)], target)
    run = _Run(inputs, ReAGentParams(**QUICK))
    run.chains.steps += 1
    rows = run._rows(updating=True, checking=True)
    values, _ = run._forward(rows)
    with torch.no_grad():
        logits = tiny.model(input_ids=rows.ids).logits[:, len(source) - 1 :].float()
    direct = torch.softmax(logits, -1).gather(2, torch.tensor(target.ids).expand(len(rows.ids), -1)[..., None])
    width = rows.ids.shape[1]
    assert torch.allclose(values[:, : width - len(source) + 1], direct[..., 0], atol=1e-5)


def test_each_target_sees_the_source_and_the_tokens_generated_before_it(tiny, tiny_case):
    source, target = tiny_case
    result = attribute(tiny, source, target, **QUICK)
    prefix = torch.tensor(result.extras["target_prefix_matrix"])
    assert prefix.shape == (len(target.ids), len(target.ids) - 1)
    assert torch.equal(prefix.triu(), torch.zeros_like(prefix))  # y_t never scores y_t or later
    totals = torch.tensor(result.matrix).sum(1) + prefix.sum(1)
    assert torch.allclose(totals, torch.ones_like(totals), atol=1e-5)


def test_no_probe_stopping_falls_back_to_the_last_scores(tiny, tiny_case, monkeypatch):
    source, target = tiny_case
    original = _Run._forward

    def never_hits(self, rows):
        values, hits = original(self, rows)
        return values, torch.zeros_like(hits)

    monkeypatch.setattr(_Run, "_forward", never_hits)
    result = attribute(tiny, source, target, probes=4, max_steps=5)
    matrix = torch.tensor(result.matrix)
    assert not matrix.isnan().any() and matrix.abs().sum() > 0
    assert result.extras["converged"] == [False] * len(target.ids)
    assert result.extras["steps"] == [5] * len(target.ids)
    warning = result.convergence_warning()
    assert warning and "not converged" in warning


def test_forced_targets_the_model_ranks_low_can_still_stop(tiny, tiny_case):
    source, _ = tiny_case
    with torch.no_grad():
        logits = tiny.model(input_ids=torch.tensor([source])).logits[0, -1]
    unlikely = Target([int(logits.argmin())], [None], generated=False)
    result = attribute(tiny, source, unlikely, **QUICK)
    assert result.extras["stop_rank"][0] == int((logits > logits.min()).sum()) + 1
    assert result.extras["converged"] == [True]


def test_a_contrast_explains_the_probability_gap_and_keeps_its_sign(tiny, tiny_case):
    source, target = tiny_case
    with torch.no_grad():
        logits = tiny.model(input_ids=torch.tensor([source + target.ids[:-1]])).logits[0, len(source) - 1 :]
    foil = [next(i for i in row.argsort(descending=True).tolist() if i != y) for row, y in zip(logits, target.ids)]
    contrast = Target(target.ids, foil, target.generated)
    run = _Run(
        AttributionInput(tiny, source, [(i, i + 1) for i in range(len(source))], contrast), ReAGentParams(**QUICK)
    )
    probs = torch.softmax(logits, -1)
    expected = (probs[range(len(foil)), target.ids] - probs[range(len(foil)), foil]) / 2
    assert torch.allclose(run.reference, expected, atol=1e-6)
    assert run.sign.tolist() == (logits[range(len(foil)), target.ids] >= logits[range(len(foil)), foil]).tolist()
    result = attribute(tiny, source, contrast, **QUICK)
    assert not torch.tensor(result.matrix).isnan().any()


def test_progress_rises_and_cancel_stops(tiny, tiny_case):
    source, target = tiny_case
    seen: list[float] = []
    inputs = AttributionInput(
        tiny,
        source,
        [(i, i + 1) for i in range(len(source))],
        target,
        hooks=Hooks(progress=lambda f, m="": seen.append(f)),
    )
    get_method("reagent").attribute(inputs, QUICK)
    assert seen == sorted(seen) and seen[-1] == 1.0
    calls = []
    stop = AttributionInput(
        tiny,
        source,
        [(i, i + 1) for i in range(len(source))],
        target,
        hooks=Hooks(cancelled=lambda: calls.append(1) or len(calls) > 3),
    )
    with pytest.raises(Cancelled):
        get_method("reagent").attribute(stop, QUICK)


class WideTokenizer:
    """A tokenizer that names more ids than the model embeds, with special and added tokens."""

    unk_token_id, pad_token_id, eos_token_id, bos_token_id, mask_token_id = 0, 1, 2, 3, None
    all_special_ids: ClassVar[list[int]] = [0, 1, 2, 3]
    added_tokens_decoder: ClassVar[dict[int, str]] = {60: "<tool>", 70: "<beyond>"}

    def __len__(self) -> int:
        return 80

    def decode(self, ids):
        return " ".join(f"t{i}" for i in ids)


def test_replacements_stay_in_the_real_vocabulary(tiny, tiny_case):
    wide = LoadedModel(tiny.model, WideTokenizer(), "wide", tiny.device, tiny.dtype)
    allowed = allowed_ids(wide)
    assert allowed.max() < 64 and not {0, 1, 2, 3, 60} & set(allowed.tolist())
    sequence = torch.tensor(tiny_case[0])
    generator = torch.Generator().manual_seed(0)
    positions = torch.arange(len(sequence)).repeat(200)
    scorer = LocalScorer(wide, ScoreRequest(tiny_case[0], [len(sequence) - 1]))
    for replacements in (uniform_replacements(wide, sequence), model_replacements(wide, scorer, sequence, 8)):
        drawn = replacements.sample(positions, generator)
        assert set(drawn.tolist()) <= set(allowed.tolist())
        assert not (drawn == sequence[positions]).any()  # a replacement is never the token itself


def test_mlm_replacement_needs_a_local_safetensors_model(tiny, tiny_case, tmp_path):
    source, target = tiny_case
    with pytest.raises(ParameterError, match="mlm_path"):
        attribute(tiny, source, target, replacement="mlm")
    with pytest.raises(ParameterError, match="not a directory"):
        attribute(tiny, source, target, replacement="mlm", mlm_path=str(tmp_path / "missing"))
    with pytest.raises(ParameterError, match="safetensors"):
        attribute(tiny, source, target, replacement="mlm", mlm_path=str(tmp_path))


def test_mlm_replacement_with_a_local_masked_lm(tiny_model_dir, tmp_path):
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import BertConfig, BertForMaskedLM, PreTrainedTokenizerFast

    from salience.attribution import load_model
    from salience.attribution.methods.reagent.replacement import mlm_replacements

    words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + list("abcdefghij")
    backend = Tokenizer(models.WordLevel({w: i for i, w in enumerate(words)}, unk_token="[UNK]"))
    backend.pre_tokenizer = pre_tokenizers.Split("", "isolated")
    mlm_tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend,
        unk_token="[UNK]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        mask_token="[MASK]",
    )
    torch.manual_seed(0)
    BertForMaskedLM(
        BertConfig(
            vocab_size=len(words), hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32
        )
    ).save_pretrained(tmp_path)
    mlm_tokenizer.save_pretrained(tmp_path)
    loaded = load_model(str(tiny_model_dir), "cpu", "float32")
    sequence = torch.tensor(loaded.tokenizer("abcabc", add_special_tokens=False)["input_ids"])
    replacements = mlm_replacements(loaded, sequence, str(tmp_path), candidates=4)
    letters = {loaded.tokenizer.convert_tokens_to_ids(c) for c in "abcdefghij"}
    found = {int(i) for i, p in zip(replacements.ids.flatten(), replacements.probs.flatten()) if p > 0}
    assert found and found <= letters  # the MLM's words, spelled as the explained model's tokens
    assert torch.allclose(replacements.probs.sum(1), torch.ones(len(sequence)))
    drawn = replacements.sample(torch.arange(len(sequence)), torch.Generator().manual_seed(0))
    assert not (drawn == sequence).any()


def spearman(a: torch.Tensor, b: torch.Tensor) -> float:
    ranks = torch.stack([a.argsort().argsort(), b.argsort().argsort()]).double()
    return float(torch.corrcoef(ranks)[0, 1])


def mean_spearman(rows: torch.Tensor, others: torch.Tensor | None = None) -> float:
    """Mean rank correlation over the pairs of rows (of `rows` alone, or one from each)."""
    pairs = (
        [(a, b) for a in rows for b in others]
        if others is not None
        else [(rows[i], rows[j]) for i in range(len(rows)) for j in range(i + 1, len(rows))]
    )
    return sum(spearman(a, b) for a, b in pairs) / len(pairs)


OUR_SEEDS = 6
"""Runs of ours against Inseq's 3 stored ones. Measured over 400 draws of 6 of 18 seeds here: Pearson of the
means 0.65 at the least (median 0.83), the across/within ratio 0.78 at the least (median 1.0), Alice's
rank 4 at the worst. With 3 seeds the old limits (Spearman of the means >= 0.5, ratio >= 0.75, Alice in
the top 3) failed 1 draw in 16: whichever seeds a CPU's rounding leads to, that test sat on an edge."""


@pytest.mark.slow
def test_rank_agreement_with_inseq_across_seeds(embedded, margin):
    """Inseq's ReAGent (its sampler patched to uniform draws) and ours, same settings, several seeds.

    The two are stochastic, so single runs differ; their seed means must agree, and a run of ours must
    agree with one of Inseq's about as well as two runs of one implementation agree with each other.
    Inseq's rows are its own output, stored by tests/data/reference/make.py (a minute and a half to rerun).
    """
    oracle = json.loads((REFERENCE / "reagent_inseq.json").read_text(encoding="utf-8"))
    source = embedded.tokenizer(oracle["text"])["input_ids"]
    assert source == oracle["source_ids"]
    # Inseq's greedy answer, forced: greedy decoding here could differ where two logits nearly tie
    target = Target(oracle["target_ids"], [None] * len(oracle["target_ids"]), generated=True)
    settings = {"probes": oracle["probes"], "max_steps": oracle["max_steps"]}
    theirs = torch.tensor(oracle["rows"])
    ours = torch.stack(
        [
            torch.tensor(attribute(embedded, source, target, replacement="uniform", seed=seed, **settings).matrix[0])
            for seed in range(OUR_SEEDS)
        ]
    )
    means = torch.stack([theirs.mean(0), ours.mean(0)])
    margin("ReAGent vs Inseq, Pearson of the seed means", float(torch.corrcoef(means)[0, 1]), above=0.45)
    within = (mean_spearman(theirs) + mean_spearman(ours)) / 2
    margin(
        "ReAGent vs Inseq, Spearman across / within implementations", mean_spearman(theirs, ours) / within, above=0.55
    )
    alice = source.index(embedded.tokenizer(" Alice", add_special_tokens=False)["input_ids"][0])
    assert alice in theirs.mean(0).topk(3).indices.tolist()  # Inseq's stored rows: the copied name
    margin(
        "ReAGent, rank of the copied name in our seed mean",
        int((ours.mean(0) > ours.mean(0)[alice]).sum()) + 1,
        below=6,
    )
