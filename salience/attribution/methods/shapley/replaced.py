"""Coalitions through the scoring boundary: an absent token is replaced by a baseline token.

Attention masking (`coalitions.AttentionCoalitions`) needs the model's weights; a served model can only be
sent token ids. So here a coalition is the teacher-forced sequence x ++ y with every absent source token
replaced by the baseline (`unk` by default, as occlusion's), positions unchanged, and its value is read by
`Scorer.score` like any other perturbation: the same game on a local model and on a served one. It differs
from the attention game (the model still sees a token there, one that says little), so the two give
somewhat different values; `masking` in the results says which was played.
"""

from __future__ import annotations

import torch

from salience.attribution.compute.gradients import baseline_id
from salience.attribution.methods.base import AttributionInput
from salience.attribution.methods.shapley.coalitions import CoalitionOutcome, Coalitions, OnBatch


class ReplacedCoalitions(Coalitions):
    """Coalitions as sequences with their absent tokens replaced by `baseline`, scored by the input's scorer."""

    def __init__(self, inputs: AttributionInput, budget_mb: int, baseline: str | int) -> None:
        super().__init__(inputs)
        self.baseline = baseline_id(inputs.loaded, baseline)
        self.scorer = inputs.scorer(budget_mb)
        self.sequence = torch.tensor(inputs.source_ids + inputs.target.ids)  # x ++ y: what the scorer reads
        reference = self.scorer.reference
        self.full = CoalitionOutcome(reference.explained, reference.outranked == 0)
        self._remember(self._key(torch.zeros(self.n_source, dtype=torch.bool)), self.full.values[0], self.full.kept[0])
        self.forwards, self.calls, self.token_forwards = 1, 1, self.scorer.token_forwards

    def _run(self, absent: torch.Tensor, keys: list[bytes], on_batch: OnBatch | None) -> None:
        sequences = self.sequence.expand(len(keys), -1).clone()
        sequences[:, : self.n_source][absent] = self.baseline
        scored = self.scorer.score(sequences, on_batch)
        for row, key in enumerate(keys):
            self._remember(key, scored.explained[row], scored.outranked[row] == 0)
        self.forwards += len(keys)
        self.calls += 1
        self.token_forwards = self.scorer.token_forwards
