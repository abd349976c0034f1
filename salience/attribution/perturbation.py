"""Coalitions of players → the explained value of every target step; shared by LIME, KernelSHAP and TextGenSHAP.

A player is a group of source positions (a segment, sentence, word or token); positions in no player
(template tokens) are present in every coalition. An absent player's tokens are taken out of
attention: the forward runs only the present tokens, each at its own position id, so no position
shifts. That is the attention-mask form of masking, at a fraction of its cost (absent tokens are not
computed at all). Target step t is read where the model predicts it: y_1 from the last present source
position, later steps from the (always present) target prefix. A coalition with no source token at
all reads y_1 after the tokenizer's start token.

Coalitions are sorted by their first absent position and batched to the memory budget; positions
before a batch's first absent token are unchanged, so their keys and values come from the unperturbed
forward's KV cache. A coalition asked for twice is run once. Progress and cancellation between batches.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Literal

import torch
from pydantic import Field

from salience.attribution.kv import prefix_cache
from salience.attribution.methods.base import (
    AttributionInput,
    MethodParams,
    chunks,
    explained_quantity,
    items_per_batch,
)
from salience.attribution.players import Boundaries, Level, file_tokens, label
from salience.attribution.progress import check_cancel
from salience.attribution.surrogate import fit_linear

Value = Literal["logprob", "unchanged"]
OnBatch = Callable[[int, int], None]
"""Called after each batch with (coalitions run so far in this call, coalitions this call runs)."""


class PerturbationParams(MethodParams):
    """Parameters every coalition method shares."""

    level: Level = Field(default="word", description="players: segment, sentence, word or token")
    value: Value = Field(default="logprob", description="logprob: f_t per target (summed for Shapley); "
                                                        "unchanged: 1 if the greedy output stays the same, else 0")
    seed: int = 0
    max_forwards: int = Field(default=2000, ge=2, description="coalitions evaluated at most (the budget)")


@dataclass
class Outcome:
    """Per coalition: f_t for every target step [M, T], and whether y_t is still the greedy choice [M, T]."""

    values: torch.Tensor
    kept: torch.Tensor

    def value(self, kind: Value) -> torch.Tensor:
        """The game's value per coalition: [M, T] per-target f_t, or [M, 1] 'greedy output unchanged'."""
        return self.values if kind == "logprob" else self.kept.all(dim=1, keepdim=True).float()


class Coalitions:
    """Runs coalitions (sets of absent source positions) through the model, memoised, batched, KV-reusing."""

    def __init__(self, inputs: AttributionInput, budget_mb: int) -> None:
        self.inputs, self.loaded, self.budget_mb = inputs, inputs.loaded, budget_mb
        self.ids = inputs.sequence_ids()[0].cpu()
        self.n_source, self.n_target = inputs.n_source, inputs.n_target
        self.target = torch.tensor(inputs.target.ids)
        tokenizer = self.loaded.tokenizer
        start = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else tokenizer.eos_token_id
        self.start_id = int(start or 0)
        self.forwards = 0
        self.token_forwards = 0
        self._memo: dict[bytes, tuple[torch.Tensor, torch.Tensor]] = {}
        self._unperturbed()

    @torch.inference_mode()
    def _unperturbed(self) -> None:
        out = self.loaded.model.base_model(input_ids=self.ids[None].to(self.loaded.device), use_cache=True)
        self.cache = out.past_key_values
        hidden = out.last_hidden_state[:, self.n_source - 1:]
        values, kept = self._read(hidden)
        self.full = Outcome(values, kept)
        self._memo[self._key(torch.zeros(self.n_source, dtype=torch.bool))] = (values[0], kept[0])
        self.forwards, self.token_forwards = 1, len(self.ids)

    def evaluate(self, absent: torch.Tensor, on_batch: OnBatch | None = None) -> Outcome:
        """Outcomes of coalitions given as absent source positions [M, L] (bool)."""
        keys = [self._key(row) for row in absent]
        todo = sorted({k: i for i, k in enumerate(keys) if k not in self._memo}.values(),
                      key=lambda i: _first(absent[i]))
        if todo:
            self._run(absent[todo], [keys[i] for i in todo], on_batch)
        values = torch.stack([self._memo[k][0] for k in keys])
        kept = torch.stack([self._memo[k][1] for k in keys])
        return Outcome(values, kept)

    @torch.inference_mode()
    def _run(self, absent: torch.Tensor, keys: list[bytes], on_batch: OnBatch | None) -> None:
        size = items_per_batch(self.loaded, len(self.ids), self.n_target, self.budget_mb, layers_held=1)
        for batch in chunks(len(keys), size):
            check_cancel(self.inputs.cancelled)
            values, kept = self._forward(absent[batch.start:batch.stop])
            for row, i in enumerate(batch):
                self._memo[keys[i]] = (values[row], kept[row])
            if on_batch:
                on_batch(batch.stop, len(keys))

    def _forward(self, absent: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One batched forward of coalitions that share the present prefix before `prefix`."""
        n, source = len(self.ids), self.n_source
        present = torch.ones((len(absent), n), dtype=torch.bool)
        present[:, :source] = ~absent
        reads = [int(row[:source].nonzero().max()) if row[:source].any() else -1 for row in present]
        prefix = max(0, min(min(_first(a) for a in absent), min(reads)))
        rows = [self._row(row, read, prefix) for row, read in zip(present, reads)]
        width = max(len(ids) for ids, _ in rows)
        ids = torch.full((len(rows), width), self.start_id, dtype=torch.long)
        positions = torch.zeros((len(rows), width), dtype=torch.long)
        mask = torch.zeros((len(rows), prefix + width), dtype=torch.long)
        mask[:, :prefix] = 1
        for r, (row_ids, row_positions) in enumerate(rows):
            ids[r, :len(row_ids)] = row_ids
            positions[r, :len(row_ids)] = row_positions
            positions[r, len(row_ids):] = row_positions[-1]  # right padding: after every read, never seen
            mask[r, prefix:prefix + len(row_ids)] = 1
        cache = prefix_cache(self.cache, prefix, len(rows))
        device = self.loaded.device
        # The explicit mask also keeps transformers from reading the gaps in position ids as packed sequences.
        hidden = self.loaded.model.base_model(input_ids=ids.to(device), position_ids=positions.to(device),
                                              attention_mask=mask.to(device), past_key_values=cache,
                                              use_cache=cache is not None).last_hidden_state
        lengths = torch.tensor([len(row_ids) for row_ids, _ in rows])
        at = (lengths[:, None] - self.n_target + torch.arange(self.n_target)).to(device)
        self.forwards += len(rows)
        self.token_forwards += int(lengths.sum())
        return self._read(hidden.gather(1, at[..., None].expand(-1, -1, hidden.shape[-1])))

    def _row(self, present: torch.Tensor, read: int, prefix: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Ids and position ids of one coalition from `prefix` on; its last n_target tokens are read."""
        positions = present[prefix:].nonzero()[:, 0] + prefix
        ids = self.ids[positions]
        if read < 0:  # no source token present: predict y_1 after the start token
            ids = torch.cat([torch.tensor([self.start_id]), ids])
            positions = torch.cat([torch.tensor([self.n_source - 1]), positions])
        return ids, positions

    def _read(self, hidden: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """f_t and 'y_t is the greedy choice' from hidden states at the T reading positions [B, T, d]."""
        logits = self.loaded.model.get_output_embeddings()(hidden).float()
        cap = getattr(self.loaded.model.config, "final_logit_softcapping", None)
        if cap:
            logits = torch.tanh(logits / cap) * cap
        values = explained_quantity(logits, self.inputs.target).cpu()
        kept = (logits.argmax(dim=-1).cpu() == self.target)
        return values, kept

    @staticmethod
    def _key(absent: torch.Tensor) -> bytes:
        return absent.to(torch.uint8).numpy().tobytes()


def _first(absent: torch.Tensor) -> int:
    """The first absent position of a coalition (its length if none is absent)."""
    hits = absent.nonzero()
    return int(hits[0, 0]) if len(hits) else len(absent)


class Game:
    """Players over the source positions of one Coalitions runner; present[M, P] → the game's value."""

    def __init__(self, coalitions: Coalitions, players: list[list[int]], value: Value) -> None:
        self.coalitions, self.players, self.kind = coalitions, players, value
        self.membership = torch.zeros((len(players), coalitions.n_source), dtype=torch.float32)
        for p, tokens in enumerate(players):
            self.membership[p, tokens] = 1.0

    @property
    def n_players(self) -> int:
        return len(self.players)

    def __call__(self, present: torch.Tensor, on_batch: OnBatch | None = None) -> torch.Tensor:
        """The value [M, K] of coalitions given as present players [M, P] (K = T targets, or 1)."""
        absent = ((~present.bool()).float() @ self.membership) > 0
        return self.coalitions.evaluate(absent, on_batch).value(self.kind)


def level_players(inputs: AttributionInput, level: Level) -> tuple[Boundaries, list[list[int]]]:
    """The source's boundaries and its players at `level` (file tokens only)."""
    pieces = token_pieces(inputs)
    boundaries = Boundaries.of(pieces, inputs.ranges)
    return boundaries, boundaries.split(file_tokens(inputs.ranges), level)


def token_pieces(inputs: AttributionInput) -> list[str]:
    tokenizer = inputs.loaded.tokenizer
    return [tokenizer.decode([i]) for i in inputs.source_ids]


def spread(values: torch.Tensor, players: list[list[int]], n_source: int, density: bool = True) -> torch.Tensor:
    """Player values [P, K] → token scores [K, L]: each token gets its player's value / size (density)."""
    scores = torch.zeros((values.shape[1], n_source), dtype=torch.float32)
    for p, tokens in enumerate(players):
        scores[:, tokens] = (values[p] / (len(tokens) if density else 1)).unsqueeze(1)
    return scores


def surrogate_scores(inputs: AttributionInput, params: PerturbationParams, sample: Callable[[int], torch.Tensor],
                     weigh: Callable[[torch.Tensor], torch.Tensor], alpha: float,
                     label: str) -> tuple[torch.Tensor, dict]:
    """LIME / KernelSHAP: coalitions drawn by `sample(n_players)`, their values fitted by a linear model
    weighted by `weigh(masks)`, one fit per target step (the fit is linear in the values)."""
    _, players = level_players(inputs, params.level)
    masks = sample(len(players))
    weights = weigh(masks)
    coalitions = Coalitions(inputs, params.memory_budget_mb)
    game = Game(coalitions, players, params.value)
    values = game(masks, lambda done, total: inputs.progress(done / total, f"{label}: {done} of {total} samples"))
    coef, intercept = fit_linear(masks, values, weights, alpha)
    scores = spread(coef, players, inputs.n_source).expand(inputs.n_target, -1)
    extras = {"players": player_records(players, token_pieces(inputs), params.level, coef.sum(dim=1)),
              "samples": len(masks), "intercept": intercept.sum().item(), **cost_extras(coalitions)}
    return scores, extras


def player_records(players: list[list[int]], pieces: list[str], level: Level, values: torch.Tensor,
                   stderr: torch.Tensor | None = None, parent: int | None = None, exact: bool = False) -> list[dict]:
    """JSON-ready players for results: level, tokens, a short label, value, and for Shapley estimates the
    standard error (`exact`: every coalition was enumerated) and the unit it refines (`parent`)."""
    return [{"level": level, "tokens": tokens, "label": label(pieces, tokens), "value": float(values[p]),
             "stderr": None if stderr is None else float(stderr[p]), "exact": exact, "parent": parent}
            for p, tokens in enumerate(players)]


def cost_extras(coalitions: Coalitions) -> dict[str, float]:
    """How much model work a run took: coalitions run, token forwards, and their full-forward equivalent."""
    return {"forwards": coalitions.forwards, "token_forwards": coalitions.token_forwards,
            "full_forward_equivalents": round(coalitions.token_forwards / len(coalitions.ids), 2)}
