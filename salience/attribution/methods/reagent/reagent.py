"""ReAGent (Zhao & Shan 2024): learn which tokens matter by replacing random subsets; forward-only.

For each target step t, `probes` chains run independently. A chain holds logits s over the tokens
the prediction of y_t can see (the file's tokens and the generated tokens y_<t). Each step replaces a
random `replace_ratio` of them (`replacement`), measures delta = p(y_t | x) - p(y_t | replaced), and
adds logit(0.5 + 0.5 delta) to the replaced tokens and logit(0.5 - 0.5 delta) to the kept ones. The
chain stops when keeping only its `keep_top_n` best tokens (all others replaced) still leaves y_t in
the model's top `stop_top_k`. Scores: softmax(s), averaged over the chains that stopped.

How it runs fast, with the algorithm unchanged:
- every chain of every target advances in one batched forward per step, which also carries the
  stopping checks (the check of step k-1's scores rides with step k's update; a chain that passes
  keeps step k-1's scores, exactly as if it had stopped then);
- the random replacement rows are shared by the chains of one probe across targets (each chain
  still sees i.i.d. masks), so one teacher-forced row serves every target step;
- stopped chains leave the batch; a row runs only from its first replaced position, the positions
  before it coming from the unperturbed forward's KV cache; the LM head runs only where it is read.
A chain that never stops falls back to its last scores, and the target is reported "not converged"
(the Inseq port returns NaN there).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import torch
from pydantic import Field, model_validator

from salience.attribution.compute.batching import chunks, items_per_batch
from salience.attribution.compute.kv import prefix_cache
from salience.attribution.methods.base import AttributionInput, Method, MethodParams
from salience.attribution.methods.reagent.replacement import (
    Replacements,
    mlm_replacements,
    model_replacements,
    uniform_replacements,
)
from salience.attribution.progress import check_cancel

EPS = 1e-6
"""Keeps logit(0.5 +- 0.5 delta) finite when a replacement moves p(y_t) by exactly 1."""


class ReAGentParams(MethodParams):
    probes: int = Field(default=16, ge=1, le=256, description="independent chains per target token")
    replace_ratio: float = Field(default=0.3, gt=0.0, lt=1.0, description="share of tokens replaced per step")
    keep_top_n: int = Field(default=5, ge=1, description="tokens kept by the stopping check")
    stop_top_k: int = Field(default=3, ge=1, description="stop when y_t is within the model's top k")
    max_steps: int = Field(default=3000, ge=1, le=100_000)
    replacement: Literal["model", "uniform", "mlm"] = Field(
        default="model",
        description="model: the explained model's own prediction at that position; "
        "uniform: any non-special token; mlm: a masked LM from `mlm_path`",
    )
    mlm_path: str | None = Field(default=None, description="local directory of a masked LM (safetensors)")
    candidates: int = Field(
        default=32, ge=1, le=4096, description="replacement candidates per position (model and mlm)"
    )
    seed: int = 0
    template_tokens: bool = Field(default=False, description="also replace tokens the chat template adds")

    @model_validator(mode="after")
    def _mlm_needs_path(self) -> ReAGentParams:
        if self.replacement == "mlm" and not self.mlm_path:
            raise ValueError("replacement 'mlm' needs mlm_path (a local masked LM directory)")
        return self


@dataclass
class Chains:
    """The state of T x P chains: logits s [T, P, N], which have stopped, and how many updates each made."""

    logits: torch.Tensor
    visible: torch.Tensor  # [T, N]: the tokens chain t scores and may replace
    stopped: torch.Tensor  # [T, P]
    steps: torch.Tensor  # [T, P]

    def scores(self) -> torch.Tensor:
        hidden = self.logits.masked_fill(~self.visible.unsqueeze(1), float("-inf"))
        return torch.softmax(hidden, dim=-1).nan_to_num(0.0)  # a target that sees no file token scores nothing


@dataclass
class Rows:
    """The sequences of one step: ids [B, N'] after replacement, where they were replaced, and what for."""

    ids: torch.Tensor
    replaced: torch.Tensor  # [B, N'] bool
    probe: torch.Tensor  # [B]: the probe of an update row, -1 for a check row
    chain: list[tuple[int, int]]  # (t, p) of a check row, (-1, p) for an update row


class ReAGent(Method):
    name = "reagent"
    description = "ReAGent: tokens whose random replacement lowers p(y_t), by probes; forward-only"
    cost = "expensive"
    stochastic = True
    signed = False
    Params = ReAGentParams

    def scores(self, inputs: AttributionInput, params: ReAGentParams) -> tuple[torch.Tensor, dict[str, Any]]:
        run = _Run(inputs, params)
        scores = run.until_stopped()
        n, t = inputs.n_source, inputs.n_target
        extras = {
            "converged": run.converged.tolist(),
            "stopped_probes": run.chains.stopped.sum(1).tolist(),
            "steps": run.chains.steps.max(1).values.tolist(),
            "chain_steps": int(run.chains.steps.sum()),
            "stop_rank": run.stop_rank.tolist(),
            "replacement": params.replacement,
            "rows": run.rows_run,
            "token_forwards": run.token_forwards,
            "target_prefix_matrix": scores[:, n : n + t - 1].tolist(),
        }
        return scores[:, :n], extras


class _Run:
    """One ReAGent run over all target steps at once."""

    def __init__(self, inputs: AttributionInput, params: ReAGentParams) -> None:
        self.inputs, self.params = inputs, params
        self.loaded = inputs.loaded
        self.generator = torch.Generator().manual_seed(params.seed)
        self.sequence = inputs.sequence_ids()[0]
        n, t = inputs.n_source, inputs.n_target
        self.positions = torch.arange(n - 1, n - 1 + t)  # position n-1+t predicts y_t
        self._unperturbed()
        self.replacements = self._replacements()
        visible = self._visible()
        logits = torch.rand((t, params.probes, len(self.sequence)), generator=self.generator)
        self.chains = Chains(
            logits,
            visible,
            torch.zeros((t, params.probes), dtype=torch.bool),
            torch.zeros((t, params.probes), dtype=torch.long),
        )
        self.final = torch.zeros_like(logits)
        self.rows_run = self.token_forwards = 0

    @torch.inference_mode()
    def _unperturbed(self) -> None:
        out = self.loaded.model(
            input_ids=self.sequence.unsqueeze(0), use_cache=True, logits_to_keep=self.positions.to(self.loaded.device)
        )
        self.cache = out.cache
        logits = out.logits[0].float().cpu()  # [T, V]
        self.reference = self._value(logits)
        self.stop_rank = torch.clamp(
            self._rank(logits) + 1, min=self.params.stop_top_k
        )  # forced targets may rank lower
        self.sign = self._contrast_sign(logits)

    def _replacements(self) -> Replacements:
        params, sequence = self.params, self.sequence.cpu()
        if params.replacement == "uniform":
            return uniform_replacements(self.loaded, sequence)
        if params.replacement == "mlm":
            return mlm_replacements(self.loaded, sequence, str(params.mlm_path), params.candidates)
        return model_replacements(self.loaded, self.sequence, params.candidates)

    def _visible(self) -> torch.Tensor:
        """[T, N]: chain t sees the file's tokens (and template tokens if asked) and y_<t."""
        n, t, total = self.inputs.n_source, self.inputs.n_target, len(self.sequence)
        source = torch.tensor([r is not None or self.params.template_tokens for r in self.inputs.ranges])
        visible = torch.zeros((t, total), dtype=torch.bool)
        visible[:, :n] = source
        for step in range(t):
            visible[step, n : n + step] = True
        return visible

    def until_stopped(self) -> torch.Tensor:
        """Advance every chain until it stops or `max_steps` updates are spent; the [T, N] mean scores."""
        chains, params = self.chains, self.params
        for step in range(1, params.max_steps + 2):
            check_cancel(self.inputs.hooks.cancelled)
            if chains.stopped.all():
                break
            rows = self._rows(updating=step <= params.max_steps, checking=step > 1)
            values, hits = self._forward(rows)
            self._stop(rows, hits)
            self._update(rows, values)
            done = float(chains.stopped.float().mean())
            self.inputs.hooks.progress(max(done, step / (params.max_steps + 1)), f"ReAGent step {step}")
        converged = chains.stopped.any(dim=1)
        self.converged = converged
        final = torch.where(chains.stopped.unsqueeze(-1), self.final, chains.scores())
        weight = torch.where(converged.unsqueeze(1), chains.stopped.float(), torch.ones_like(chains.stopped.float()))
        return (final * weight.unsqueeze(-1)).sum(1) / weight.sum(1, keepdim=True)

    def _rows(self, updating: bool, checking: bool) -> Rows:
        chains, active = self.chains, ~self.chains.stopped
        targets = active.any(dim=1).nonzero().squeeze(1)
        width = int(self.positions[targets].max()) + 1
        replaced, probes, chain = [], [], []
        if updating:
            for p in active.any(dim=0).nonzero().squeeze(1).tolist():
                visible = chains.visible[active[:, p]].any(dim=0)[:width]
                replaced.append(visible & (torch.rand(width, generator=self.generator) < self.params.replace_ratio))
                probes.append(p)
                chain.append((-1, p))
        if checking:
            scores = chains.scores()
            for t, p in active.nonzero().tolist():
                keep = scores[t, p].topk(min(self.params.keep_top_n, int(chains.visible[t].sum()))).indices
                mask = chains.visible[t].clone()
                mask[keep] = False
                replaced.append(mask[:width])
                probes.append(-1)
                chain.append((t, p))
        mask = torch.stack(replaced)
        ids = self.sequence.cpu()[:width].expand(len(mask), -1).clone()
        where = mask.nonzero(as_tuple=True)
        ids[where] = self.replacements.sample(where[1], self.generator)
        return Rows(ids, mask, torch.tensor(probes), chain)

    @torch.inference_mode()
    def _forward(self, rows: Rows) -> tuple[torch.Tensor, torch.Tensor]:
        """Per row, the explained value at each target position [B, T] and whether y_t is still ranked [B, T]."""
        loaded, width = self.loaded, rows.ids.shape[1]
        reading = self.positions[self.positions < width]
        size = items_per_batch(loaded, width, len(reading), self.params.memory_budget_mb)
        values = torch.zeros((len(rows.ids), len(self.positions)))
        hits = torch.zeros((len(rows.ids), len(self.positions)), dtype=torch.bool)
        for batch in chunks(len(rows.ids), size):
            changed = rows.replaced[batch.start : batch.stop].any(dim=0)
            first = int(changed.nonzero()[0]) if changed.any() else width
            prefix = min(first, int(reading[0]))
            ids = rows.ids[batch.start : batch.stop, prefix:].to(loaded.device)
            cache = prefix_cache(self.cache, prefix, len(batch))
            logits = loaded.model(
                input_ids=ids,
                cache=cache,
                use_cache=cache is not None,
                logits_to_keep=(reading - prefix).to(loaded.device),
            ).logits.float()
            values[batch.start : batch.stop, : len(reading)] = self._value(logits).cpu()
            rank = self._rank(logits).cpu()
            same = self._contrast_sign(logits).cpu() == self.sign[: len(reading)]
            hits[batch.start : batch.stop, : len(reading)] = (rank < self.stop_rank[: len(reading)]) & same
            self.rows_run += len(batch)
            self.token_forwards += len(batch) * (width - prefix)
        return values, hits

    def _value(self, logits: torch.Tensor) -> torch.Tensor:
        """p(y_t) (minus p(foil_t), halved, with a contrast) from logits [..., R, V] of target steps 0..R-1."""
        target = self.inputs.target
        probs = torch.softmax(logits.float(), dim=-1)
        value = self._pick(probs, target.ids)
        return (value - self._pick(probs, target.foil_ids)) / 2 if target.contrastive else value

    def _rank(self, logits: torch.Tensor) -> torch.Tensor:
        """How many tokens outrank y_t, per target step, from logits [..., R, V]."""
        return (logits > self._pick(logits, self.inputs.target.ids).unsqueeze(-1)).sum(-1)

    def _contrast_sign(self, logits: torch.Tensor) -> torch.Tensor:
        """Whether y_t's logit is at least its foil's, per target step (always, where there is no foil)."""
        target = self.inputs.target
        foils = [f if f is not None else i for f, i in zip(target.foil_ids, target.ids)]
        return self._pick(logits, target.ids) >= self._pick(logits, foils)

    @staticmethod
    def _pick(scores: torch.Tensor, ids: list[int | None]) -> torch.Tensor:
        """scores[..., t, ids[t]] for t < R, 0 where ids[t] is None."""
        steps = scores.shape[-2]
        index = torch.tensor([i if i is not None else 0 for i in ids[:steps]], device=scores.device)
        picked = scores.gather(-1, index.expand(*scores.shape[:-1]).unsqueeze(-1)).squeeze(-1)
        present = torch.tensor([i is not None for i in ids[:steps]], device=scores.device)
        return torch.where(present, picked, torch.zeros_like(picked))

    def _stop(self, rows: Rows, hits: torch.Tensor) -> None:
        """Chains whose check passed stop with the scores it checked (those of the previous step)."""
        scores = self.chains.scores()
        for row, (t, p) in enumerate(rows.chain):
            if t >= 0 and hits[row, t]:
                self.chains.stopped[t, p] = True
                self.final[t, p] = scores[t, p]

    def _update(self, rows: Rows, values: torch.Tensor) -> None:
        chains = self.chains
        for row, p in enumerate(rows.probe.tolist()):
            if p < 0:
                continue
            going = ~chains.stopped[:, p]
            width = rows.replaced.shape[1]
            delta = (self.reference - values[row])[going].unsqueeze(1)  # [T', 1]
            sign = torch.where(rows.replaced[row], 1.0, -1.0)  # [N']
            step = torch.logit((0.5 + 0.5 * sign * delta).clamp(EPS, 1 - EPS))
            visible = chains.visible[going, :width]
            chains.logits[going, p, :width] += torch.where(visible, step, torch.zeros_like(step))
            chains.steps[going, p] += 1
