"""The scoring boundary: the one question perturbation methods ask of a model, wherever it runs.

"For these token-id sequences, how likely is the token at each of these positions, and how many tokens does
the model rank above it there?" `LocalScorer` answers it with the loaded model, computing only what follows
the prefix a batch shares with the unperturbed sequence (whose KV cache it keeps); a served model answers it
over HTTP (`attribution.remote`). Occlusion, ReAGent and the coalition methods with `masking: baseline`
(`shapley.replaced`) ask nothing else of a model, so they run unchanged on both.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import torch

from salience.attribution.compute.batching import chunks, items_per_batch
from salience.attribution.compute.kv import prefix_cache, recording_cache
from salience.attribution.progress import CancelCheck, check_cancel, no_cancel

if TYPE_CHECKING:
    from salience.attribution.model import LoadedModel

OnBatch = Callable[[int, int], None]
"""Called after each batch with (sequences scored so far, sequences asked)."""
ZERO_VECTOR = -1
"""A position that holds the zero vector rather than a token (occlusion's `zero` baseline): local models only."""


@dataclass(frozen=True)
class ScoreRequest:
    """What a scorer is made for: perturbations of `reference`, read at `positions` (each token's log p given
    the tokens before it), and at the same positions the log p of `also` (a contrast's foil, local only)."""

    reference: list[int]
    positions: list[int]
    also: list[int | None] | None = None
    budget_mb: int = 2048
    """Activation memory per batch (a local model)."""
    cancelled: CancelCheck = no_cancel


@dataclass(frozen=True)
class Scored:
    """Per sequence m and asked position r: log p(reference[positions[r]] | sequences[m] before it), and how
    many tokens the model ranks above that token there (0: it is the greedy choice); with `also`, the log p
    of those ids at the same positions (a contrast's foil; 0 where the id is None). The token read is the
    reference's even where a sequence holds another there (ReAGent replaces earlier target tokens, which the
    later ones read as context)."""

    logprobs: torch.Tensor
    outranked: torch.Tensor
    also: torch.Tensor | None = None

    @property
    def explained(self) -> torch.Tensor:
        """f_t = log p(y_t), minus log p(foil_t) where `also` holds a foil (`gradients.explained_quantity`)."""
        return self.logprobs - self.also if self.also is not None else self.logprobs


class Scorer(Protocol):
    """Scores sequences against the unperturbed one it was made for (`reference`)."""

    reference: Scored
    """The unperturbed sequence's scores at the asked positions, [1, R]."""
    token_forwards: int
    """Tokens the model computed so far (a measure of the work done)."""

    def score(self, sequences: torch.Tensor, on_batch: OnBatch | None = None) -> Scored:
        """Scores of `sequences` [M, W] (ids; perturbed copies of the reference's first W tokens) at the asked
        positions below W (`Scored`)."""
        ...

    def candidates(self, k: int, allowed: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Per position of the reference, up to k of the model's likeliest tokens there among `allowed`, other
        than the reference's own: ids [N, k] and log p [N, k] (-inf where there is none)."""
        ...


class LocalScorer:
    """A `Scorer` over the loaded model: one forward of the reference with its KV cache, then each batch
    from the first position where any of its sequences differs from the reference (or the first read one)."""

    def __init__(self, loaded: LoadedModel, asked: ScoreRequest) -> None:
        self.loaded, self.budget_mb, self.cancelled = loaded, asked.budget_mb, asked.cancelled
        self.ids = torch.tensor(asked.reference)
        self.positions = torch.tensor(asked.positions)
        self.also = asked.also
        end = int(self.positions.max())  # inputs run up to the last read position's predecessor
        with torch.inference_mode():
            out = self._forward(self.ids[None, :end], 0, recording_cache(loaded.model), self.positions)
        self.cache = out.cache
        self.reference = self._read(out.logits, self.ids[None], self.positions)
        self.token_forwards = end

    @torch.inference_mode()
    def score(self, sequences: torch.Tensor, on_batch: OnBatch | None = None) -> Scored:
        read = self.positions[self.positions < sequences.shape[1]]
        end = int(read.max())
        size = items_per_batch(self.loaded, end, len(read), self.budget_mb)
        parts: list[Scored] = []
        for batch in chunks(len(sequences), size):
            check_cancel(self.cancelled)
            rows = sequences[batch.start : batch.stop]
            changed = (rows[:, :end] != self.ids[:end]).any(dim=0)
            first = int(changed.nonzero()[0]) if changed.any() else end
            prefix = min(first, int(read[0]) - 1)
            cache = prefix_cache(self.cache, prefix, len(rows))
            out = self._forward(rows[:, prefix:end], prefix, cache, read)
            parts.append(self._read(out.logits, rows, read))
            self.token_forwards += len(rows) * (end - prefix)
            if on_batch:
                on_batch(batch.stop, len(sequences))
        return Scored(
            torch.cat([p.logprobs for p in parts]),
            torch.cat([p.outranked for p in parts]),
            torch.cat([p.also for p in parts]) if self.also is not None else None,  # type: ignore[misc]
        )

    @torch.inference_mode()
    def candidates(self, k: int, allowed: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Per position of the reference, the model's k likeliest tokens among `allowed` other than the
        reference's own there: ids [N, k] and log p [N, k] (row 0, which nothing predicts: -inf). The LM head
        runs on chunks of positions, so a long prompt never holds [N, V] logits at once."""
        model, n = self.loaded.model, len(self.ids)
        hidden = model.base_model(input_ids=self.ids[None, :-1].to(self.loaded.device)).last_hidden_state[0]
        head = model.get_output_embeddings()
        ids = torch.zeros((n, k), dtype=torch.long)
        logp = torch.full((n, k), float("-inf"))
        for i in range(0, n - 1, 256):
            scores = torch.log_softmax(head(hidden[i : i + 256]).float(), dim=-1).cpu()
            mask = torch.full((scores.shape[-1],), float("-inf"))
            mask[allowed[allowed < scores.shape[-1]]] = 0.0
            original = self.ids[i + 1 : i + 257].unsqueeze(1)
            top, top_ids = (scores + mask).scatter(1, original, float("-inf")).topk(k, dim=1)
            logp[i + 1 : i + 257], ids[i + 1 : i + 257] = top, top_ids
        return ids, logp

    def _forward(self, ids: torch.Tensor, start: int, cache: Any, read: torch.Tensor) -> Any:
        """The model over `ids` (from position `start`, after `cache`), logits where the `read` tokens are
        predicted. Ids are embedded here, so a position may hold the zero vector (`ZERO_VECTOR`)."""
        loaded = self.loaded
        embeds = loaded.embed(ids.clamp(min=0))
        embeds = torch.where((ids == ZERO_VECTOR).to(loaded.device)[..., None], 0.0, embeds)
        keep = (read - 1 - start).to(loaded.device)
        return loaded.model(inputs_embeds=embeds, cache=cache, use_cache=True, logits_to_keep=keep)

    def _read(self, logits: torch.Tensor, rows: torch.Tensor, read: torch.Tensor) -> Scored:
        """Log p and rank of the reference's tokens at the `read` positions, from each row's logits [B, R, V]."""
        logp = torch.log_softmax(logits.float(), dim=-1)
        tokens = self.ids[read].to(logp.device).expand(len(rows), -1)
        picked = logp.gather(-1, tokens.unsqueeze(-1)).squeeze(-1)
        outranked = (logp > picked.unsqueeze(-1)).sum(-1)
        also = None
        if self.also is not None:
            foils = self.also[: len(read)]
            foil = torch.tensor([i if i is not None else 0 for i in foils], device=logp.device)
            has = torch.tensor([i is not None for i in foils], device=logp.device)
            foil_logp = logp.gather(-1, foil.expand(len(rows), -1).unsqueeze(-1)).squeeze(-1)
            also = torch.where(has, foil_logp, torch.zeros_like(foil_logp)).cpu()
        return Scored(picked.cpu(), outranked.cpu(), also)
