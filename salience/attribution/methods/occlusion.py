"""Occlusion: replace a window of source tokens by a baseline and record the drop of every f_t.

All target steps are read from the same teacher-forced forward. Windows are sorted by start and
batched; positions before a batch's first window are unchanged, so their KV cache is computed once
(the unperturbed forward) and shared: a batch runs only from its first window on. As in Captum,
a token covered by several windows gets the mean of their drops.
"""

from __future__ import annotations

from typing import Any

import torch
from pydantic import Field

from salience.attribution.compute.batching import chunks, items_per_batch
from salience.attribution.compute.gradients import baseline_embedding, explained_quantity
from salience.attribution.compute.kv import prefix_cache
from salience.attribution.methods.base import AttributionInput, Method, MethodParams
from salience.attribution.progress import check_cancel


class OcclusionParams(MethodParams):
    window: int = Field(default=1, ge=1, le=64)
    baseline: str | int = Field(default="unk", description="zero, unk, pad, eos, mask or a token id")


class Occlusion(Method):
    name = "occlusion"
    description = "drop of f_t when a token is replaced by a baseline; signed, forward-only"
    cost = "moderate"
    linear = True
    needs_baseline = True
    Params = OcclusionParams

    def scores(self, inputs: AttributionInput, params: OcclusionParams) -> tuple[torch.Tensor, dict[str, Any]]:
        n = inputs.n_source
        window = min(params.window, n)
        drops = self._window_drops(inputs, params, window)  # [W, T]
        totals = torch.zeros((inputs.n_target, n), dtype=torch.float32)
        counts = torch.zeros(n, dtype=torch.float32)
        for start in range(drops.shape[0]):
            totals[:, start : start + window] += drops[start].unsqueeze(1)
            counts[start : start + window] += 1
        return totals / counts, {}

    @torch.inference_mode()
    def _window_drops(self, inputs: AttributionInput, params: OcclusionParams, window: int) -> torch.Tensor:
        loaded, t = inputs.loaded, inputs.n_target
        embeds = inputs.embeddings()
        base = baseline_embedding(loaded, params.baseline)
        full = loaded.model(inputs_embeds=embeds, use_cache=True, logits_to_keep=t)
        reference = explained_quantity(full.logits, inputs.target)[0]
        n_windows = inputs.n_source - window + 1
        seq_len = embeds.shape[1]
        size = items_per_batch(loaded, seq_len, t, params.memory_budget_mb)
        drops = torch.empty((n_windows, t), dtype=torch.float32)
        batches = chunks(n_windows, size)
        for done, starts in enumerate(batches):
            check_cancel(inputs.hooks.cancelled)
            prefix = starts.start
            suffix = embeds[:, prefix:].expand(len(starts), -1, -1).clone()
            for row, start in enumerate(starts):
                suffix[row, start - prefix : start - prefix + window] = base
            cache = prefix_cache(full.cache, prefix, len(starts))
            logits = loaded.model(inputs_embeds=suffix, cache=cache, use_cache=True, logits_to_keep=t).logits
            drops[starts.start : starts.stop] = (reference - explained_quantity(logits, inputs.target)).cpu()
            inputs.hooks.progress((done + 1) / len(batches), "occlusion")
        return drops
