"""Faithfulness of a result: Soft-NS / Soft-NC and MoRF / LeRF, each next to random scores.

- Soft sufficiency (NS) and comprehensiveness (NC), generative form (ReAGent): keep (NS) or drop (NC)
  each source embedding with probability equal to its normalised score (dropped embeddings are zero),
  and measure how far each target step's next-token distribution moves from the full input's, by the
  Hellinger distance d(p, q) = ||sqrt p - sqrt q||_2 / sqrt 2, averaged over steps and mask samples.
  Faithful scores: high NC (dropping what matters changes the output) and low NS.
- MoRF / LeRF (AttnLRP): zero the source embeddings most-relevant-first and least-relevant-first,
  track the explained quantity (mean over steps of log p(y_t), minus the foil's), normalise by the
  change from the full to the empty input, and report the mean gap LeRF - MoRF (larger is better).
- Fixed-rate Soft-NS / Soft-NC: the same, but each mask keeps (NS) or drops (NC) exactly
  `FIXED_RATE` of the source tokens, drawn without replacement with probability proportional to the
  normalised score. Bernoulli masks keep as many tokens as the scores' mass says, which favours flat
  scores across methods; here every method, and every random placement, keeps the same number.

The reference is the same scores put on random tokens (seeded permutations, averaged over `repeats`):
both then drop the same expected mass and differ only in *which* tokens, so figures read "x times
random" without rewarding scores that are merely flat or peaked.
Every mask and removal step is one teacher-forced sequence; all of them go through batched forwards.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch

from salience.attribution.compute.batching import chunks, items_per_batch
from salience.attribution.compute.gradients import explained_quantity, target_logits
from salience.attribution.errors import ParameterError
from salience.attribution.model import LoadedModel
from salience.attribution.progress import CancelCheck, Progress, check_cancel, no_cancel, no_progress
from salience.attribution.result import AttributionResult
from salience.attribution.targets import Target, text_ids

FIXED_RATE = 0.2
"""The share of source tokens a fixed-rate sufficiency mask keeps and a comprehensiveness mask drops."""


@dataclass
class Faithfulness:
    """Perturbation metrics of one result and of random scores on the same input."""

    soft_ns: float
    soft_nc: float
    random_ns: float
    random_nc: float
    morf: list[float]
    lerf: list[float]
    area: float
    random_area: float
    kept_fraction: float
    """Mean normalised score: the share of tokens a sufficiency mask keeps (small for peaked scores)."""
    fixed_ns: float = 0.0
    fixed_nc: float = 0.0
    random_fixed_ns: float = 0.0
    random_fixed_nc: float = 0.0

    @property
    def nc_log_ratio(self) -> float:
        """log(NC / random NC): above 0 is better than random."""
        return _log_ratio(self.soft_nc, self.random_nc)

    @property
    def ns_log_ratio(self) -> float:
        """log(NS / random NS): below 0 is better than random."""
        return _log_ratio(self.soft_ns, self.random_ns)

    @property
    def fixed_nc_log_ratio(self) -> float:
        """log(fixed-rate NC / random's): above 0 is better than random."""
        return _log_ratio(self.fixed_nc, self.random_fixed_nc)

    @property
    def fixed_ns_log_ratio(self) -> float:
        """log(fixed-rate NS / random's): below 0 is better than random."""
        return _log_ratio(self.fixed_ns, self.random_fixed_ns)

    def summary(self) -> str:
        return (
            f"Soft-NC {self.soft_nc / max(self.random_nc, 1e-12):.1f}× random, "
            f"Soft-NS {self.soft_ns / max(self.random_ns, 1e-12):.2f}× random, "
            f"MoRF/LeRF area {self.area:.2f} (random {self.random_area:.2f})"
        )

    def to_dict(self) -> dict:
        ratios = ("nc_log_ratio", "ns_log_ratio", "fixed_nc_log_ratio", "fixed_ns_log_ratio")
        return {**asdict(self), **{name: getattr(self, name) for name in ratios}}


def _log_ratio(value: float, reference: float) -> float:
    return math.log(max(value, 1e-12) / max(reference, 1e-12))


class _Runner:
    """Teacher-forced forwards of one input with some source embeddings scaled (masked) per sequence."""

    def __init__(self, loaded: LoadedModel, result: AttributionResult, budget_mb: int, cancelled: CancelCheck):
        self.loaded, self.cancelled = loaded, cancelled
        self.n_source, self.n_target = len(result.source), len(result.target_ids)
        ids = [t.id for t in result.source] + result.target_ids[:-1]
        self.embeds = loaded.embed(torch.tensor([ids])).detach()  # [1, L, d]
        self.target = _target(loaded, result)
        self.batch = items_per_batch(loaded, len(ids), self.n_target, budget_mb)

    def logprobs(self, keep: torch.Tensor) -> torch.Tensor:
        """Next-token log-probabilities [S, T, V] for S keep-masks [S, n_source] (1 keeps, 0 zeroes)."""
        out = []
        for rows in chunks(keep.shape[0], self.batch):
            check_cancel(self.cancelled)
            embeds = self.embeds.expand(len(rows), -1, -1).clone()
            embeds[:, : self.n_source] *= keep[rows.start : rows.stop, :, None].to(embeds.device, embeds.dtype)
            out.append(torch.log_softmax(target_logits(self.loaded, embeds, self.n_target).float(), dim=-1))
        return torch.cat(out)

    def quantity(self, keep: torch.Tensor) -> torch.Tensor:
        """Mean over target steps of the explained quantity, per keep-mask: [S]."""
        return explained_quantity(self.logprobs(keep), self.target).mean(dim=-1)


def _target(loaded: LoadedModel, result: AttributionResult) -> Target:
    foil = text_ids(loaded, result.contrast) if result.contrast is not None else []
    return Target(
        result.target_ids, [foil[t] if t < len(foil) else None for t in range(len(result.target_ids))], result.generated
    )


def hellinger(logp: torch.Tensor, logq: torch.Tensor) -> torch.Tensor:
    """d(p, q) = ||sqrt p - sqrt q||_2 / sqrt 2 over the last axis, from log-probabilities."""
    return torch.linalg.vector_norm(torch.exp(0.5 * logp) - torch.exp(0.5 * logq), dim=-1) / math.sqrt(2.0)


def normalised(scores: torch.Tensor) -> torch.Tensor:
    """|scores| / max |scores| in [0, 1] (all zeros stay zero)."""
    magnitude = scores.abs().float()
    return magnitude / magnitude.max().clamp(min=1e-12)


def soft_masks(importance: torch.Tensor, samples: int, generator: torch.Generator) -> tuple[torch.Tensor, ...]:
    """Bernoulli keep-masks: (sufficiency: keep with p = importance, comprehensiveness: keep with 1 - p)."""
    draws = torch.rand((samples, importance.numel()), generator=generator)
    return (draws < importance).float(), (draws >= importance).float()


def fixed_masks(
    importance: torch.Tensor, samples: int, generator: torch.Generator, rate: float = FIXED_RATE
) -> tuple[torch.Tensor, ...]:
    """Masks of exactly round(rate * n) tokens (at least 1) drawn without replacement in proportion to
    importance: (sufficiency: keep only those, comprehensiveness: drop only those)."""
    n = importance.numel()
    count = min(n, max(1, round(rate * n)))
    weights = (importance.float() + 1e-6).expand(samples, n)  # every token drawable, zeros last
    chosen = torch.multinomial(weights, count, replacement=False, generator=generator)
    keep = torch.zeros(samples, n).scatter_(1, chosen, 1.0)
    return keep, 1.0 - keep


def removal_masks(importance: torch.Tensor, points: int, most_first: bool) -> torch.Tensor:
    """Keep-masks with 0, 1/points, ..., all of the tokens removed in order of importance: [points + 1, n]."""
    n = importance.numel()
    order = torch.argsort(importance, descending=most_first, stable=True)
    keep = torch.ones(points + 1, n)
    for step in range(points + 1):
        keep[step, order[: round(step * n / points)]] = 0.0
    return keep


def faithfulness(
    loaded: LoadedModel,
    result: AttributionResult,
    samples: int = 8,
    points: int = 10,
    seed: int = 0,
    repeats: int = 3,
    budget_mb: int = 2048,
    progress: Progress = no_progress,
    cancelled: CancelCheck = no_cancel,
) -> Faithfulness:
    """Soft-NS, Soft-NC and the MoRF/LeRF area of `result`'s per-token scores, and of random placements."""
    if loaded.served:
        raise ParameterError(
            "the faithfulness figures mask input embeddings and read the whole next-token distribution, which a "
            "served model does not give: measure them on a local copy of the model"
        )
    runner = _Runner(loaded, result, budget_mb, cancelled)
    generator = torch.Generator().manual_seed(seed)
    importance = normalised(torch.tensor(result.aggregate))
    placements = [importance] + [
        importance[torch.randperm(runner.n_source, generator=generator)] for _ in range(repeats)
    ]
    with torch.inference_mode():
        full = runner.logprobs(torch.ones(1, runner.n_source))
        figures = []
        for i, scores in enumerate(placements):
            masks = torch.cat([*soft_masks(scores, samples, generator), *fixed_masks(scores, samples, generator)])
            distance = hellinger(runner.logprobs(masks), full).mean(dim=-1)  # [4S]: NS, NC, fixed NS, fixed NC
            means = [float(d.mean()) for d in distance.split(samples)]
            curves = runner.quantity(
                torch.cat([removal_masks(scores, points, True), removal_masks(scores, points, False)])
            )
            figures.append((means[0], means[1], *_curves(curves, points), means[2], means[3]))
            progress((i + 1) / len(placements), "faithfulness")
    ns, nc, morf, lerf, area, fns, fnc = figures[0]
    rns, rnc, rarea, rfns, rfnc = (sum(f[k] for f in figures[1:]) / repeats for k in (0, 1, 4, 5, 6))
    return Faithfulness(ns, nc, rns, rnc, morf, lerf, area, rarea, float(importance.mean()), fns, fnc, rfns, rfnc)


def _curves(values: torch.Tensor, points: int) -> tuple[list[float], list[float], float]:
    """MoRF and LeRF curves normalised to 1 at the full input and 0 at the empty one, and their mean gap."""
    morf, lerf = values[: points + 1], values[points + 1 :]
    full, empty = float(morf[0]), float(morf[-1])
    scale = full - empty if abs(full - empty) > 1e-6 else 1.0
    morf_n, lerf_n = (morf - empty) / scale, (lerf - empty) / scale
    return morf_n.tolist(), lerf_n.tolist(), float((lerf_n - morf_n).mean())
