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

from salience.attribution.methods.base import AttributionInput, Method, MethodParams
from salience.attribution.methods.reagent.replacement import (
    Replacements,
    mlm_replacements,
    model_replacements,
    uniform_replacements,
)
from salience.attribution.progress import check_cancel
from salience.attribution.scoring import Scored

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
    needs_weights = False
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
        self.full = torch.tensor(inputs.source_ids + inputs.target.ids)  # x ++ y: what the scorer reads
        self.sequence = self.full[:-1]  # x ++ y[:-1]: position n-1+t predicts y_t
        n, t = inputs.n_source, inputs.n_target
        self.positions = torch.arange(n - 1, n - 1 + t)
        target = inputs.target
        self.has_foil = torch.tensor([f is not None for f in target.foil_ids]) if target.contrastive else None
        self.scorer = inputs.scorer(params.memory_budget_mb)
        reference = self.scorer.reference
        self.reference = self._value(reference)[0]
        self.stop_rank = torch.clamp(reference.outranked[0] + 1, min=params.stop_top_k)  # forced targets rank lower
        self.sign = self._contrast_sign(reference)[0]
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
        self.rows_run = 0

    @property
    def token_forwards(self) -> int:
        return self.scorer.token_forwards

    def _replacements(self) -> Replacements:
        params, sequence = self.params, self.sequence
        if params.replacement == "uniform":
            return uniform_replacements(self.loaded, sequence)
        if params.replacement == "mlm":
            return mlm_replacements(self.loaded, sequence, str(params.mlm_path), params.candidates)
        return model_replacements(self.loaded, self.scorer, sequence, params.candidates)

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

    def _forward(self, rows: Rows) -> tuple[torch.Tensor, torch.Tensor]:
        """Per row, the explained value at each target position [B, T] and whether y_t is still ranked [B, T]."""
        width = rows.ids.shape[1]
        reading = int((self.positions < width).sum())
        ahead = self.full[width : width + 1].expand(len(rows.ids), -1)  # the last read target token
        scored = self.scorer.score(torch.cat([rows.ids, ahead], dim=1))
        values = torch.zeros((len(rows.ids), len(self.positions)))
        hits = torch.zeros((len(rows.ids), len(self.positions)), dtype=torch.bool)
        values[:, :reading] = self._value(scored)
        same = self._contrast_sign(scored) == self.sign[:reading]
        hits[:, :reading] = (scored.outranked < self.stop_rank[:reading]) & same
        self.rows_run += len(rows.ids)
        return values, hits

    def _value(self, scored: Scored) -> torch.Tensor:
        """p(y_t) (minus p(foil_t), halved, with a contrast) per target step read [B, R]."""
        value = scored.logprobs.exp()
        if self.has_foil is None or scored.also is None:
            return value
        foil = torch.where(self.has_foil[: value.shape[1]], scored.also.exp(), torch.zeros_like(value))
        return (value - foil) / 2

    def _contrast_sign(self, scored: Scored) -> torch.Tensor:
        """Whether y_t is at least as likely as its foil, per target step read (always, where there is no foil)."""
        if self.has_foil is None or scored.also is None:
            return torch.ones_like(scored.logprobs, dtype=torch.bool)
        return (scored.logprobs >= scored.also) | ~self.has_foil[: scored.logprobs.shape[1]]

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
