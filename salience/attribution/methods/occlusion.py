"""Occlusion: replace a window of source tokens by a baseline and record the drop of every f_t.

All target steps are read from the same teacher-forced sequence. Windows go to the scoring boundary sorted
by start, so a local model's batch runs only from its first window on (the unperturbed forward's KV cache
holds what comes before) and a served model's requests share their prefixes. As in Captum, a token covered
by several windows gets the mean of their drops.
"""

from __future__ import annotations

from typing import Any

import torch
from pydantic import Field

from salience.attribution.compute.batching import chunks
from salience.attribution.compute.gradients import baseline_id
from salience.attribution.methods.base import AttributionInput, Method, MethodParams

GROUP_IDS = 1 << 22
"""Windows are handed to the scorer in groups of at most this many token ids (32 MB), not all at once."""


class OcclusionParams(MethodParams):
    window: int = Field(default=1, ge=1, le=64)
    baseline: str | int = Field(default="unk", description="zero, unk, pad, eos, mask or a token id")


class Occlusion(Method):
    name = "occlusion"
    description = "drop of f_t when a token is replaced by a baseline; signed, forward-only"
    cost = "moderate"
    linear = True
    needs_baseline = True
    needs_weights = False
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

    def _window_drops(self, inputs: AttributionInput, params: OcclusionParams, window: int) -> torch.Tensor:
        """Each window's drop of every f_t [W, T], scored through the scoring boundary (local or served)."""
        scorer = inputs.scorer(params.memory_budget_mb)
        base = baseline_id(inputs.loaded, params.baseline)
        ids = torch.tensor(inputs.source_ids + inputs.target.ids)
        n_windows = inputs.n_source - window + 1
        drops = torch.empty((n_windows, inputs.n_target), dtype=torch.float32)
        group = max(1, GROUP_IDS // len(ids))
        for starts in chunks(n_windows, group):
            sequences = ids.expand(len(starts), -1).clone()
            for row, start in enumerate(starts):
                sequences[row, start : start + window] = base

            def report(done: int, _: int, first: int = starts.start) -> None:
                inputs.hooks.progress((first + done) / n_windows, "occlusion")

            scored = scorer.score(sequences, report)
            drops[starts.start : starts.stop] = scorer.reference.explained - scored.explained
        return drops
