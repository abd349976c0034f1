"""Sequential integrated gradients (Enguehard, ACL Findings 2023): integrated gradients per word.

For each word w, only w moves along the straight path from the baseline to its embeddings while
every other token keeps its own; S[t, i] = sum_d (e_i - b)_d * mean_alpha d f_t / d e_i,d for the
tokens i of w. Inseq's implementation runs, per target step and per token, one batch of `steps`
forward and backward passes over the whole sequence. Here:
- sum_d (e_i - b)_d d f_t / d e_i,d is a directional derivative, so one forward-mode pass
  (`forward_mode`, about two forwards) gives it for every target step t at once, on the
  teacher-forced sequence x ++ y[:-1];
- positions before w are the same all along w's path: their KV cache comes from one plain forward,
  and each batch runs only from its first word on;
- (word, token, alpha) items are batched to the memory budget, with progress and cancellation
  between batches.
Per word, the scores of its tokens integrate d f_t / d alpha, so they sum to f_t(x) - f_t(x with w at
the baseline) up to quadrature error (for single tokens: occlusion's drop). That gap is reported.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import torch
from pydantic import Field

from salience.attribution.compute.batching import chunks, freed_blocks_returned, items_per_batch
from salience.attribution.compute.gradients import baseline_embedding, explained_quantity
from salience.attribution.compute.kv import prefix_cache, recording_cache
from salience.attribution.methods.base import AttributionInput, Method, MethodParams
from salience.attribution.methods.integrated_gradients import path_points
from salience.attribution.methods.sig.forward_mode import dual_mode, dual_quantity, plain_head
from salience.attribution.model import LoadedModel
from salience.attribution.progress import check_cancel

AUTO_BASELINES = ("mask", "unk", "pad")


class SIGParams(MethodParams):
    steps: int = Field(default=50, ge=1, le=1024)
    rule: Literal["gausslegendre", "riemann_middle"] = "gausslegendre"
    baseline: str | int = Field(
        default="auto", description="auto (the mask token, else unk, else pad), zero, unk, pad, eos, mask or a token id"
    )
    granularity: Literal["word", "token"] = Field(default="word", description="what moves along one path")
    normalise: bool = Field(
        default=True, description="divide each target row by its L2 norm, as the paper does (raw rows in extras)"
    )
    template_tokens: bool = Field(
        default=False,
        description="also attribute tokens the chat template adds (not in the file; each costs `steps` passes)",
    )


@dataclass
class Items:
    """One row per path point: the word that moves, the token whose derivative is read, alpha's index.

    Each word also gets one row at alpha = 0 (index `steps`, weight 0): the word at the baseline,
    for the completeness check.
    """

    words: list[range]
    word: torch.Tensor
    token: torch.Tensor
    step: torch.Tensor


def resolve_baseline(tokenizer: Any, baseline: str | int) -> str | int:
    """'auto' becomes the first special token the tokenizer has among mask, unk and pad, else 'zero'."""
    if baseline != "auto":
        return baseline
    return next(
        (name for name in AUTO_BASELINES if isinstance(getattr(tokenizer, f"{name}_token_id", None), int)), "zero"
    )


def path_items(inputs: AttributionInput, params: SIGParams) -> Items:
    n = inputs.n_source
    starts = inputs.word_starts() if params.granularity == "word" else list(range(n))
    words = [range(s, e) for s, e in zip(starts, starts[1:] + [n])]
    if not params.template_tokens:
        words = [w for w in words if inputs.ranges[w.start] is not None]
    word, token, step = [], [], []
    for index, w in enumerate(words):
        for i in w:
            word += [index] * params.steps
            token += [i] * params.steps
            step += list(range(params.steps))
        word.append(index)  # the alpha = 0 row
        token.append(w.start)
        step.append(params.steps)
    return Items(words, torch.tensor(word), torch.tensor(token), torch.tensor(step))


class SequentialIntegratedGradients(Method):
    name = "sequential_integrated_gradients"
    description = "integrated gradients per word, the rest fixed (SIG); signed, words x steps"
    cost = "expensive"
    word_players = True
    linear = True
    needs_gradients = True
    needs_baseline = True
    has_convergence_delta = True
    Params = SIGParams

    def coverage_gap(self, loaded: LoadedModel) -> str | None:
        """SIG's forward-mode derivatives and its chunked SDPA attention leave out two kinds of model."""
        kind = getattr(loaded.model.config, "model_type", None) or type(loaded.model).__name__
        if getattr(loaded.model.config.get_text_config(), "attn_logit_softcapping", None) is not None:
            return f"does not cover {kind}: its attention soft-caps its scores, which SDPA cannot"
        if any(type(m).__name__.endswith("Experts") for m in loaded.model.modules()):
            return f"does not cover {kind}: torch has no forward-mode derivative of a mixture's grouped matmuls"
        return None

    def scores(self, inputs: AttributionInput, params: SIGParams) -> tuple[torch.Tensor, dict[str, Any]]:
        loaded, n_target = inputs.loaded, inputs.n_target
        baseline = resolve_baseline(loaded.tokenizer, params.baseline)
        embeds = inputs.embeddings()
        base = baseline_embedding(loaded, baseline)
        items = path_items(inputs, params)
        alphas, weights = path_points(params.steps, params.rule)
        alphas = torch.cat([alphas, torch.zeros(1, dtype=alphas.dtype)]).to(loaded.device, embeds.dtype)
        weights = torch.cat([weights, torch.zeros(1, dtype=weights.dtype)]).float()
        with torch.no_grad():
            full = loaded.model(
                inputs_embeds=embeds, cache=recording_cache(loaded.model), use_cache=True, logits_to_keep=n_target
            )
        f_full = explained_quantity(full.logits, inputs.target)
        raw = torch.zeros((n_target, inputs.n_source), dtype=torch.float32)
        at_baseline = torch.zeros((len(items.words), n_target), dtype=torch.float32)
        head = plain_head(loaded, embeds, inputs.target, f_full)
        size = items_per_batch(loaded, embeds.shape[1], n_target, params.memory_budget_mb, vjps=1, layers_held=2)
        batches = chunks(len(items.word), size)
        for done, rows in enumerate(batches):
            check_cancel(inputs.hooks.cancelled)
            with freed_blocks_returned(embeds.shape[1]):
                f, df = self._batch(inputs, items, rows, embeds, base, alphas, full.cache, head)
            step = items.step[rows.start : rows.stop]
            raw.index_add_(1, items.token[rows.start : rows.stop], (weights[step].unsqueeze(1) * df).T)
            ends = step == params.steps
            at_baseline[items.word[rows.start : rows.stop][ends]] = f[ends]
            inputs.hooks.progress((done + 1) / len(batches), "sequential integrated gradients")
        gaps = self._completeness_gaps(raw, items.words, f_full[0].cpu(), at_baseline)
        extras = {
            "baseline": baseline,
            "granularity": params.granularity,
            "paths": len(items.words),
            "completeness_gap": gaps.tolist(),
            "max_completeness_gap": float(gaps.max()),
            "raw_matrix": raw.tolist(),
        }
        norms = raw.norm(dim=1, keepdim=True)
        matrix = raw / torch.where(norms > 0, norms, torch.ones_like(norms)) if params.normalise else raw
        return matrix, extras

    @staticmethod
    def _batch(
        inputs: AttributionInput,
        items: Items,
        rows: range,
        embeds: torch.Tensor,
        base: torch.Tensor,
        alphas: torch.Tensor,
        cache: Any,
        head: bool,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """f_t and d f_t / d alpha (along the row's token) for the rows of one batch: two [B, T] on the CPU."""
        word = items.word[rows.start : rows.stop]
        prefix = items.words[int(word[0])].start
        suffix = embeds[:, prefix:].expand(len(rows), -1, -1).clone()
        tangent = torch.zeros_like(suffix)
        alpha = alphas[items.step[rows.start : rows.stop]]
        for index in word.unique().tolist():
            span, mine = items.words[index], (word == index).nonzero().squeeze(1)
            moved = embeds[0, span.start : span.stop]
            suffix[mine, span.start - prefix : span.stop - prefix] = base + alpha[mine].view(-1, 1, 1) * (moved - base)
        token = items.token[rows.start : rows.stop]
        along = items.step[rows.start : rows.stop] < len(alphas) - 1
        tangent[along.nonzero().squeeze(1), token[along] - prefix] = embeds[0, token[along]] - base
        past = prefix_cache(cache, prefix, len(rows))
        with dual_mode(inputs.loaded.model):
            f, df = dual_quantity(
                inputs.loaded, suffix, tangent, inputs.target, plain=head, cache=past, use_cache=past is not None
            )
        return f.float().cpu(), df.float().cpu()

    @staticmethod
    def _completeness_gaps(
        raw: torch.Tensor, words: list[range], f_full: torch.Tensor, at_baseline: torch.Tensor
    ) -> torch.Tensor:
        """Per target: the largest |sum of a word's scores - (f_t(x) - f_t(x, word at the baseline))|."""
        if not words:
            return torch.zeros(raw.shape[0])
        sums = torch.stack([raw[:, w.start : w.stop].sum(dim=1) for w in words], dim=1)  # [T, W]
        return (sums - (f_full.unsqueeze(1) - at_baseline.T)).abs().max(dim=1).values
