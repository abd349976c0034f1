"""`AttributionResult`: the one data type that crosses from the engine to the CLI and the server."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from typing import Any

COMPLETENESS_WARNING = 0.5
"""A path method's largest completeness gap (in units of f: nats for log p) worth a warning."""
CONSERVED = (0.8, 1.2)
"""A conserving method's heatmap total, as a share of the explained value, that needs no note."""


@dataclass
class SourceToken:
    """A model input token; `range` is its [start, end) in the file (code points), None if template-only."""

    id: int
    text: str
    range: tuple[int, int] | None


@dataclass
class AttributionResult:
    """Scores of source tokens for each explained target token, with what was run and how long it took.

    `matrix[t][i]` is the attribution of source token i for target step t; `aggregate[i]` is the heatmap:
    the sum over target steps, the attribution of the completion as a whole (`aggregation.heatmap_of`).
    While `rows_pending`, the result is the first stage of a run: the heatmap, with `matrix` still empty.
    `timings` holds seconds per part of the run; a key with a "/" is a sub-part of the key before it.
    """

    source: list[SourceToken]
    target_ids: list[int]
    target_tokens: list[str]
    matrix: list[list[float]]
    aggregate: list[float]
    explained_text: str
    method: str
    parameters: dict[str, Any]
    model_id: str
    chat: bool
    contrast: str | None = None
    generated: bool = True
    timings: dict[str, float] = field(default_factory=dict)
    extras: dict[str, Any] = field(default_factory=dict)
    rows_pending: bool = False

    @property
    def seconds(self) -> float:
        """Wall time of the run that produced this result (its parts, not their sub-parts or the cache flag)."""
        return sum(v for k, v in self.timings.items() if "/" not in k and k != "cached")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self, indent: int | None = None) -> str:
        return json.dumps(self.to_dict(), indent=indent, ensure_ascii=False)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AttributionResult:
        """A result from `to_dict`'s output; keys it does not write (the CLI's "words" view) are ignored."""
        source = [SourceToken(t["id"], t["text"], tuple(t["range"]) if t["range"] else None) for t in data["source"]]
        known = {f.name for f in fields(cls)}
        return cls(**{**{k: v for k, v in data.items() if k in known}, "source": source})

    @classmethod
    def from_json(cls, text: str) -> AttributionResult:
        return cls.from_dict(json.loads(text))

    def top_tokens(self, k: int = 5) -> list[int]:
        """Indices of the k file tokens with the largest |aggregate|, best first."""
        ranked = sorted((i for i, t in enumerate(self.source) if t.range), key=lambda i: -abs(self.aggregate[i]))
        return ranked[:k]

    def completeness_warning(self) -> str | None:
        """A warning when a path method's scores miss f(input) - f(baseline) by more than COMPLETENESS_WARNING."""
        gap = self.extras.get("max_completeness_gap")
        if gap is None or gap <= COMPLETENESS_WARNING:
            return None
        return (
            f"{self.method}: the path integral misses f(input) - f(baseline) by up to {gap:.2f}; "
            "more `steps` make it exact"
        )

    def convergence_warning(self) -> str | None:
        """A warning when a probing method (ReAGent) stopped at `max_steps` for some target tokens."""
        converged = self.extras.get("converged")
        if not converged or all(converged):
            return None
        missing = [repr(self.target_tokens[t]) for t, ok in enumerate(converged) if not ok]
        return (
            f"{self.method}: not converged for {len(missing)} of {len(converged)} target tokens "
            f"({', '.join(missing[:5])}): no probe met the stopping rule within max_steps, so their "
            "scores are the last reached"
        )

    def sampling_warning(self) -> str | None:
        """A warning when a Shapley sampler stopped (budget or permutations) before its standard errors met
        the tolerance."""
        if self.extras.get("tolerance_met", True):
            return None
        spent = "the forward budget (max_forwards)" if self.extras.get("budget_spent") else "max_permutations"
        return (
            f"{self.method}: {spent} ran out before every standard error met the tolerance "
            f"(largest ±{self.extras.get('max_stderr', float('nan')):.3g}); the values are estimates"
        )

    def conservation_note(self) -> str | None:
        """For a method that reports its explained value (AttnLRP's logit), where that value is far from what
        the heatmap holds: the heatmap's share, what earlier completion tokens hold, what the rules absorbed."""
        explained, prompt = self.extras.get("explained"), self.extras.get("prompt_relevance")
        if not explained or not prompt or abs(total := sum(explained)) < 1e-6:
            return None
        share = sum(prompt) / total
        if CONSERVED[0] <= share <= CONSERVED[1]:
            return None
        completion = (sum(self.extras.get("relevance_sum", prompt)) - sum(prompt)) / total
        held = f", earlier completion tokens {completion:.0%}" if abs(completion) >= 0.005 else ""
        return (
            f"{self.method}: the prompt holds {share:.0%} of the explained logit{'s' * (len(explained) > 1)}"
            f"{held}; its rules absorbed {1 - share - completion:.0%} (attention's softmax, biases)"
        )

    def notes(self) -> list[str]:
        """What every view shows beside the scores: the default method's stand-in where it does not cover the
        model, and how much of the explained value a conserving method's heatmap holds."""
        return [note for note in (self.extras.get("fallback"), self.conservation_note()) if note]

    def warnings(self) -> list[str]:
        """Every warning about how far these scores can be trusted (shown by the CLI and the server)."""
        found = (
            self.extras.get("fallback"),
            self.extras.get("out_of_memory"),
            self.completeness_warning(),
            self.convergence_warning(),
            self.sampling_warning(),
        )
        return [w for w in found if w]

    def players_of(self, tokens: list[int]) -> list[dict[str, Any]]:
        """The players (segments, sentences, words of a perturbation method) holding any of `tokens`, coarse first."""
        wanted = set(tokens)
        return [p for p in self.extras.get("players", []) if wanted & set(p["tokens"])]


@dataclass(frozen=True)
class RunNotes:
    """What a run says of itself beside the scores. Stored in `AttributionResult.extras` under the keys results
    have always had (`--json`, the `salience/scores` payload and stored results keep their shape)."""

    target: str
    """How the target was found: "forced", "generated", "draft verified", "draft rejected at token k"."""
    memory_retries: int = 0
    """Smaller memory budgets tried after running out of memory."""
    out_of_memory: str | None = None
    """Set when another method stands in for the one asked for, which did not fit: the warning to show."""
    truncated_tokens: int = 0
    """Prompt tokens left out (`maxPromptTokens`)."""
    sink_tokens: int = 0
    """Leading tokens added as an attention sink."""
    fallback: str | None = None
    """Set when the default method does not cover the model and a weaker one stands in: the line to show."""

    def extras(self) -> dict[str, Any]:
        """The notes under their `extras` keys; the ones that did not happen are left out (the target never)."""
        notes = {
            "memory_retries": self.memory_retries,
            "out_of_memory": self.out_of_memory,
            "truncated_tokens": self.truncated_tokens,
            "sink_tokens": self.sink_tokens,
            "fallback": self.fallback,
        }
        return {"target": self.target, **{k: v for k, v in notes.items() if v}}
