"""Run coalitions (sets of absent source positions) through the model: the value of every target step.

`Coalitions` is what the games ask: outcomes of coalitions, memoised. Here, `AttentionCoalitions`, which
needs the model's weights; `replaced.ReplacedCoalitions` asks the scoring boundary instead.

Positions in no player (template tokens) are present in every coalition. An absent token is taken
out of attention: the forward runs only the present tokens, each at its own position id, so no
position shifts. That is the attention-mask form of masking (tested against transformers' own mask)
at a fraction of its cost, since absent tokens are not computed at all. Step t is read where the
model predicts y_t: y_1 at the last present source position, later steps on the target prefix, which
is always present. A coalition with no source token at all reads y_1 after the start token.

Coalitions share work along a prefix trie. Sorted by their absent patterns, a group of coalitions that
agree on the first positions computes those positions' keys and values once (or crops them from the
unperturbed forward's cache when every token there is present); where the group disagrees on a block
with enough prompt left after it, it splits in two (block present / block absent) and each half goes
on from there. What is left of each coalition runs batched on its group's cache. A coalition asked
for twice runs once. Progress and cancellation between forwards.
"""

from __future__ import annotations

import copy
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

import torch

from salience.attribution.compute.batching import chunks, items_per_batch
from salience.attribution.compute.gradients import explained_quantity
from salience.attribution.compute.kv import prefix_cache, recording_cache
from salience.attribution.methods.base import AttributionInput
from salience.attribution.progress import check_cancel

OnBatch = Callable[[int, int], None]
"""Called after each forward with (coalitions finished so far in this call, coalitions this call runs)."""
MIN_SHARED_TOKENS = 32
"""Compute a group's common tokens once when that saves at least this many token forwards."""
MIN_SPLIT_TOKENS = 24
"""Split a group at a block only when at least this many prompt tokens follow it..."""
MIN_SPLIT_BLOCK = 8
"""...and the block has at least this many tokens (splitting at every word would only shrink batches)."""


@dataclass
class CoalitionOutcome:
    """Per coalition: f_t for every target step [M, T], and whether y_t is still the greedy choice [M, T]."""

    values: torch.Tensor
    kept: torch.Tensor

    def value(self, kind: str) -> torch.Tensor:
        """The game's value per coalition: [M, T] per-target f_t, or [M, 1] 'greedy output unchanged'."""
        return self.values if kind == "logprob" else self.kept.all(dim=1, keepdim=True).float()


@dataclass
class _Prefix:
    """Keys and values of a group's present tokens before `end`, and the hidden state of the last one."""

    cache: Any | None
    end: int
    length: int
    last: torch.Tensor | None
    unperturbed: bool


class Coalitions(ABC):
    """Evaluates coalitions of one input, memoised (a coalition asked for twice runs once), in the order of
    their absent patterns so that neighbours share prefixes. `forwards` counts coalitions run (the budget's
    unit), `calls` model calls and `token_forwards` the tokens they computed; `full` is the outcome with
    every token present."""

    full: CoalitionOutcome
    forwards: int
    calls: int
    token_forwards: int

    def __init__(self, inputs: AttributionInput) -> None:
        self.inputs, self.loaded = inputs, inputs.loaded
        self.ids = inputs.sequence_ids()[0].cpu()
        self.n_source, self.n_target = inputs.n_source, inputs.n_target
        self._memo: dict[bytes, tuple[torch.Tensor, torch.Tensor]] = {}

    def evaluate(self, absent: torch.Tensor, on_batch: OnBatch | None = None) -> CoalitionOutcome:
        """Outcomes of coalitions given as absent source positions [M, L] (bool)."""
        keys = [self._key(row) for row in absent]
        todo = sorted(
            {k: i for i, k in enumerate(keys) if k not in self._memo}.values(), key=lambda i: tuple(absent[i].tolist())
        )
        if todo:
            with torch.inference_mode():
                self._run(absent[todo], [keys[i] for i in todo], on_batch)
        values = torch.stack([self._memo[k][0] for k in keys])
        kept = torch.stack([self._memo[k][1] for k in keys])
        return CoalitionOutcome(values, kept)

    @abstractmethod
    def _run(self, absent: torch.Tensor, keys: list[bytes], on_batch: OnBatch | None) -> None:
        """Compute the outcome of each coalition in `absent` [M, L] into the memo under `keys`."""

    def _remember(self, key: bytes, values: torch.Tensor, kept: torch.Tensor) -> None:
        self._memo[key] = (values, kept)

    @staticmethod
    def _key(absent: torch.Tensor) -> bytes:
        return absent.to(torch.uint8).numpy().tobytes()


class AttentionCoalitions(Coalitions):
    """Absent tokens taken out of attention (the module's docstring): needs the model's weights."""

    def __init__(self, inputs: AttributionInput, budget_mb: int) -> None:
        super().__init__(inputs)
        self.budget_mb = budget_mb
        self.target = torch.tensor(inputs.target.ids)
        tokenizer = self.loaded.tokenizer
        start = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else tokenizer.eos_token_id
        self.start_id = int(start or 0)
        self._unperturbed()

    @torch.inference_mode()
    def _unperturbed(self) -> None:
        ids = self.ids[None].to(self.loaded.device)
        out = self.loaded.model.base_model(input_ids=ids, cache=recording_cache(self.loaded.model), use_cache=True)
        self.cache, self.hidden = out.cache, out.last_hidden_state[0]
        values, kept = self._read(self.hidden[None, self.n_source - 1 :])
        self.full = CoalitionOutcome(values, kept)
        self._remember(self._key(torch.zeros(self.n_source, dtype=torch.bool)), values[0], kept[0])
        self.forwards, self.calls, self.token_forwards = 1, 1, len(self.ids)

    def _run(self, absent: torch.Tensor, keys: list[bytes], on_batch: OnBatch | None) -> None:
        self._done, self._total, self._on_batch = 0, len(keys), on_batch
        """Walk the prefix trie depth first: each group shares what it agrees on, splits, or runs what is left."""
        blocks = _blocks(absent)
        stack = [(torch.arange(len(keys)), _Prefix(None, 0, 0, None, unperturbed=True), 0)]
        while stack:
            rows, prefix, first = stack.pop()
            group = absent[rows]
            agreed = first
            while agreed < len(blocks) and bool(
                (group[:, blocks[agreed].start] == group[0, blocks[agreed].start]).all()
            ):
                agreed += 1
            end = blocks[agreed].start if agreed < len(blocks) else self.n_source
            shared = int((~group[0, prefix.end : end]).sum())
            if (len(rows) - 1) * shared >= MIN_SHARED_TOKENS or (prefix.unperturbed and not group[0, :end].any()):
                prefix = self._extend(prefix, group[0], end)
            if agreed < len(blocks) and len(rows) > 1 and self._worth_splitting(group, blocks[agreed]):
                split = blocks[agreed]
                for side in (True, False):
                    stack.append((rows[group[:, split.start] == side], prefix, agreed + 1))
            else:
                self._suffixes(group, [keys[i] for i in rows.tolist()], prefix)

    def _worth_splitting(self, absent: torch.Tensor, block: range) -> bool:
        """A block large enough to share (a segment or sentence, not a word) with enough prompt after it."""
        after = float((~absent[:, block.stop :]).sum(dim=1).float().mean())
        return len(block) >= MIN_SPLIT_BLOCK and after >= MIN_SPLIT_TOKENS

    def _extend(self, prefix: _Prefix, absent: torch.Tensor, end: int) -> _Prefix:
        """`prefix` grown to `end` with this coalition's present tokens there (cropped from the unperturbed
        forward's cache while every token so far is present)."""
        unperturbed = prefix.unperturbed and not absent[:end].any()
        if unperturbed:
            return _Prefix(prefix_cache(self.cache, end, 1), end, end, self.hidden[end - 1] if end else None, True)
        positions = (~absent[prefix.end : end]).nonzero()[:, 0] + prefix.end
        if not len(positions):
            return _Prefix(prefix.cache, end, prefix.length, prefix.last, False)
        check_cancel(self.inputs.hooks.cancelled)
        out = self._forward(
            self.ids[positions][None], positions[None], copy.deepcopy(prefix.cache), prefix.length, keep_cache=True
        )
        return _Prefix(out.cache, end, prefix.length + len(positions), out.last_hidden_state[0, -1], False)

    def _suffixes(self, absent: torch.Tensor, keys: list[bytes], prefix: _Prefix) -> None:
        """Each coalition's present tokens after the group's prefix, batched on the prefix's cache."""
        rows = [self._row(a, prefix) for a in absent]
        order = sorted(range(len(rows)), key=lambda r: len(rows[r][0]))
        size = items_per_batch(self.loaded, len(self.ids), self.n_target, self.budget_mb, layers_held=1)
        for batch in chunks(len(order), size):
            check_cancel(self.inputs.hooks.cancelled)
            chosen = [order[i] for i in batch]
            hidden = self._batch_hidden([rows[r] for r in chosen], prefix)
            values, kept = self._read(hidden)
            for row, r in enumerate(chosen):
                self._remember(keys[r], values[row], kept[row])
            self._done += len(chosen)
            self.forwards += len(chosen)
            if self._on_batch:
                self._on_batch(self._done, self._total)

    def _row(self, absent: torch.Tensor, prefix: _Prefix) -> tuple[torch.Tensor, torch.Tensor, bool]:
        """Ids and positions of one coalition after the prefix; whether y_1 is read from the prefix."""
        present = torch.ones(len(self.ids), dtype=torch.bool)
        present[: self.n_source] = ~absent
        positions = present[prefix.end :].nonzero()[:, 0] + prefix.end
        from_prefix = not bool(present[prefix.end : self.n_source].any())
        if from_prefix and prefix.last is None:  # no source token at all: y_1 follows the start token
            return (
                torch.cat([torch.tensor([self.start_id]), self.ids[positions]]),
                torch.cat([torch.tensor([self.n_source - 1]), positions]),
                False,
            )
        return self.ids[positions], positions, from_prefix

    def _batch_hidden(self, rows: list[tuple[torch.Tensor, torch.Tensor, bool]], prefix: _Prefix) -> torch.Tensor:
        """Hidden states at the T reading positions of each row [B, T, d]."""
        width = max(len(ids) for ids, _, _ in rows)
        reads = []
        if width:
            ids = torch.full((len(rows), width), self.start_id, dtype=torch.long)
            positions = torch.zeros((len(rows), width), dtype=torch.long)
            for r, (row_ids, row_positions, _) in enumerate(rows):
                ids[r, : len(row_ids)] = row_ids
                positions[r, : len(row_ids)] = row_positions
                positions[r, len(row_ids) :] = row_positions[-1] if len(row_positions) else prefix.end
            cache = prefix_cache(prefix.cache, prefix.length, len(rows)) if prefix.cache is not None else None
            lengths = [len(row_ids) for row_ids, _, _ in rows]
            hidden = self._forward(ids, positions, cache, prefix.length, lengths).last_hidden_state
        for r, (row_ids, _, from_prefix) in enumerate(rows):
            own = hidden[r, max(0, len(row_ids) - self.n_target + from_prefix) : len(row_ids)] if width else None
            parts = ([prefix.last[None]] if from_prefix else []) + ([own] if own is not None else [])
            reads.append(torch.cat(parts))
        return torch.stack(reads)

    def _forward(
        self,
        ids: torch.Tensor,
        positions: torch.Tensor,
        cache: Any,
        cached: int,
        lengths: list[int] | None = None,
        keep_cache: bool = False,
    ) -> Any:
        """The base model's output for `ids` at `positions` after `cached` cached tokens (right padding
        beyond `lengths`); with `keep_cache`, its cache holds the prefix and these tokens."""
        lengths = lengths or [ids.shape[1]] * len(ids)
        mask = torch.zeros((len(ids), cached + ids.shape[1]), dtype=torch.long)
        mask[:, :cached] = 1
        for r, n in enumerate(lengths):
            mask[r, cached : cached + n] = 1
        device = self.loaded.device
        self.calls += 1
        self.token_forwards += sum(lengths)
        # The explicit mask also keeps transformers from reading gaps in position ids as packed sequences.
        return self.loaded.model.base_model(
            input_ids=ids.to(device),
            position_ids=positions.to(device),
            attention_mask=mask.to(device),
            cache=cache,
            use_cache=keep_cache or cache is not None,
        )

    def _read(self, hidden: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """f_t and 'y_t is the greedy choice' from hidden states at the T reading positions [B, T, d]."""
        logits = self.loaded.model.get_output_embeddings()(hidden).float()
        cap = getattr(self.loaded.model.config, "final_logit_softcapping", None)
        if cap:
            logits = torch.tanh(logits / cap) * cap
        values = explained_quantity(logits, self.inputs.target).cpu()
        kept = logits.argmax(dim=-1).cpu() == self.target
        return values, kept


def _blocks(absent: torch.Tensor) -> list[range]:
    """Runs of source positions on which every coalition is constant (where any row changes, a block ends)."""
    changes = (absent[:, 1:] != absent[:, :-1]).any(dim=0).nonzero()[:, 0] + 1
    edges = [0, *changes.tolist(), absent.shape[1]]
    return [range(a, b) for a, b in pairwise(edges)]
