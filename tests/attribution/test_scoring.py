"""The scoring boundary's local side: KV-prefix reuse gives what a full forward of each sequence gives, also
where a sliding-window layer has dropped positions before the first change (Gemma 2 and 3, gpt-oss)."""

from __future__ import annotations

import pytest
import torch
from tiny_models import tiny_family

from salience.attribution.scoring import LocalScorer, ScoreRequest

REFERENCE = [5, 17, 23, 8, 42, 11, 30, 7, 19, 12, 33, 4]  # 12 tokens; the tiny Gemmas' window is 4
READ = [9, 10, 11]


def full_forward(loaded, sequences: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        logits = loaded.model(input_ids=sequences).logits.float()
    logp = torch.log_softmax(logits[:, [p - 1 for p in READ]], dim=-1)
    return logp.gather(-1, torch.tensor(REFERENCE)[READ].expand(len(sequences), -1).unsqueeze(-1))[..., 0]


@pytest.mark.parametrize("family", ["llama", "gemma2", "gemma3_text", "gpt_oss"])
def test_prefix_reuse_equals_full_forwards_past_a_sliding_window(family):
    loaded = tiny_family(family)
    scorer = LocalScorer(loaded, ScoreRequest(REFERENCE, READ, budget_mb=1))  # one sequence per batch
    sequences = torch.tensor(REFERENCE).expand(4, -1).clone()
    for row, position in enumerate((1, 5, 7, 8)):  # first changes before and after the window's reach
        sequences[row, position] = 2
    scored = scorer.score(sequences)
    assert torch.allclose(scored.logprobs, full_forward(loaded, sequences), atol=1e-5)
    assert torch.allclose(scorer.reference.logprobs, full_forward(loaded, torch.tensor([REFERENCE])), atol=1e-5)
