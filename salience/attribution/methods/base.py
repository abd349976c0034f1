"""The method contract: what a method is given, declares and returns.

A method subclasses `Method`, declares its capability flags and a pydantic `Params` model, and
implements `scores()`, which returns the [target x source] matrix. `Method.attribute()` is the one
public signature: it validates parameters, times the run and builds the `AttributionResult`.

Every method sees the same teacher-forced sequence x ++ y[:-1]: position L-1+t predicts y_t, and
causality makes the later positions irrelevant to f_t, so all target steps share one sequence.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar, Literal

import torch
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from salience.attribution.aggregation import heatmap_of
from salience.attribution.errors import ParameterError
from salience.attribution.model import LoadedModel
from salience.attribution.progress import CancelCheck, Progress, check_cancel, no_cancel, no_progress
from salience.attribution.result import AttributionResult, SourceToken
from salience.attribution.scoring import Scorer, ScoreRequest
from salience.attribution.targets import Target
from salience.prompt.words import word_starts

CostClass = Literal["cheap", "moderate", "expensive"]


class MethodParams(BaseModel):
    """Parameters every method accepts; methods extend this model."""

    model_config = ConfigDict(extra="forbid")

    memory_budget_mb: int = Field(default=2048, ge=16, description="activation memory per batch")


@dataclass(frozen=True)
class Hooks:
    """How a method reaches its caller while it runs: progress, cancellation, the first stage's listener, the
    draft check, and where it records the seconds of its parts."""

    progress: Progress = no_progress
    cancelled: CancelCheck = no_cancel
    """Checked between batches, where a shared server may also let another run take its turn."""
    stop: CancelCheck | None = None
    """Checked inside a pass, at every decoder layer; None: `cancelled`."""
    on_heatmap: Callable[[AttributionResult], None] | None = None
    """Listens for the first stage: the heatmap alone, before the per-step rows (`Method.one_pass`)."""
    draft_check: Callable[[torch.Tensor, list[int], Any], None] | None = None
    """Checks a draft target on the logits [T + 1, V] of the forward over x ++ y, given with its KV cache
    (or None), and ends the method where the draft is not the greedy continuation (`attempt.DraftCheck`)."""
    deliver: Callable[[torch.Tensor], None] | None = field(default=None, repr=False)
    """Set by `Method.attribute` while a listener waits: hands the one-pass heatmap over."""
    timings: dict[str, float] = field(default_factory=dict)
    """Seconds per part of the run (`attribute/forward`, …), written as the parts end."""


@dataclass(frozen=True)
class AttributionInput:
    """What a method explains: source ids with their file ranges, and the target; `hooks` reach the caller."""

    loaded: LoadedModel
    source_ids: list[int]
    ranges: list[tuple[int, int] | None]
    target: Target
    chat: bool = False
    contrast: str | None = None
    text: str | None = None
    """The file `ranges` point into (where words break, `file_text`); None: laid out from the tokens."""
    hooks: Hooks = field(default_factory=Hooks)

    @property
    def n_source(self) -> int:
        return len(self.source_ids)

    @property
    def n_target(self) -> int:
        return len(self.target.ids)

    def file_text(self) -> str:
        """`text`, or a stand-in: each token's decoded text on its range (cut or repeated to its length), blanks
        between tokens."""
        if self.text is not None:
            return self.text
        chars = [" "] * max((r[1] for r in self.ranges if r), default=0)
        for token_id, r in zip(self.source_ids, self.ranges):
            piece = self.loaded.tokenizer.decode([token_id]) if r else ""
            if piece:
                chars[r[0] : r[1]] = (piece * (r[1] - r[0]))[: r[1] - r[0]]
        return "".join(chars)

    def word_starts(self) -> list[int]:
        """The source tokens that begin a word (`prompt.words.word_starts`, the rule every view uses)."""
        return word_starts(self.file_text(), self.ranges)

    def sequence_ids(self) -> torch.Tensor:
        """x ++ y[:-1] as a [1, N] tensor: the last T positions predict y_1..y_T.

        For a draft target, x ++ y: the extra last position checks that the turn ends after y_T.
        """
        ids = self.source_ids + (self.target.ids if self.target.draft else self.target.ids[:-1])
        return torch.tensor([ids], device=self.loaded.device)

    def scorer(self, budget_mb: int) -> Scorer:
        """The scoring boundary over x ++ y, read at y's positions (and its foil's, with a contrast): what a
        perturbation method asks of the model, local or served."""
        ids = self.source_ids + self.target.ids
        foil = self.target.foil_ids if self.target.contrastive else None
        positions = list(range(self.n_source, len(ids)))
        return self.loaded.scorer(ScoreRequest(ids, positions, foil, budget_mb, self.hooks.cancelled))

    def embeddings(self) -> torch.Tensor:
        """Input embeddings of the teacher-forced sequence, [1, N, d]."""
        return self.loaded.embed(self.sequence_ids()).detach()


class Method(ABC):
    """One attribution method: flags the server and benchmarks read, and `scores()`."""

    name: ClassVar[str]
    description: ClassVar[str]
    cost: ClassVar[CostClass]
    needs_gradients: ClassVar[bool] = False
    needs_baseline: ClassVar[bool] = False
    has_convergence_delta: ClassVar[bool] = False
    stochastic: ClassVar[bool] = False
    signed: ClassVar[bool] = True
    linear: ClassVar[bool] = False
    """Scores are linear in the explained quantity, so the heatmap (the rows' sum) explains sum_t f_t."""
    needs_weights: ClassVar[bool] = True
    """Reads the model's weights, activations or gradients; false: asks only the scoring boundary
    (`AttributionInput.scorer`), so it also explains a served model."""
    word_players: ClassVar[bool] = False
    """Scores depend on where the prompt's words break (`prompt.words`): SIG's paths, the coalitions' players."""
    one_pass: ClassVar[bool] = False
    """The heatmap comes from one backward pass of sum_t f_t, before the rows (a linear gradient method)."""
    checks_draft: ClassVar[bool] = False
    """The first forward is the plain teacher-forced one, over x ++ y, and checks a draft target there
    (`AttributionInput.draft_check`); other methods get a target verified beforehand."""
    Params: ClassVar[type[MethodParams]] = MethodParams

    def supports(self, loaded: LoadedModel) -> bool:
        """Whether this method can explain `loaded`."""
        return self.coverage_gap(loaded) is None

    def coverage_gap(self, loaded: LoadedModel) -> str | None:
        """Why this method cannot explain `loaded` ("does not cover gpt_neox"), or None: all can, unless a
        method says otherwise."""
        return None

    def parse_params(self, params: dict[str, Any] | None) -> MethodParams:
        try:
            return self.Params.model_validate(params or {})
        except ValidationError as err:
            problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in err.errors())
            known = ", ".join(self.Params.model_fields)
            raise ParameterError(f"{self.name}: {problems} (parameters: {known})") from err

    def attribute(
        self, inputs: AttributionInput, params: dict[str, Any] | MethodParams | None = None
    ) -> AttributionResult:
        """Explain `inputs.target` by `inputs.source_ids`; the one signature all methods share. `params` as a
        dict (checked here) or as this method's `Params` (checked already)."""
        parsed = params if type(params) is self.Params else self.parse_params(params)  # type: ignore[arg-type]
        hooks = inputs.hooks
        check_cancel(hooks.cancelled)
        start = time.perf_counter()
        first: list[torch.Tensor] = []

        def deliver(heatmap: torch.Tensor) -> None:  # the first stage, while the rows are still to come
            first.append(heatmap.detach().float().cpu())
            timings = {**hooks.timings, "attribute": time.perf_counter() - start}
            hooks.on_heatmap(build_result(inputs, self, parsed, None, {}, first[0], timings))

        if self.one_pass and hooks.on_heatmap is not None:
            inputs = replace(inputs, hooks=replace(hooks, deliver=deliver))
        matrix, extras = self.scores(inputs, parsed)
        hooks.timings["attribute"] = time.perf_counter() - start
        hooks.progress(1.0, self.name)
        heatmap = first[0] if first else None
        return build_result(inputs, self, parsed, matrix.detach().float().cpu(), extras, heatmap, dict(hooks.timings))

    @abstractmethod
    def scores(self, inputs: AttributionInput, params: Any) -> tuple[torch.Tensor, dict[str, Any]]:
        """The [T, L] fp32 score matrix and method-specific extras."""


def build_result(
    inputs: AttributionInput,
    method: Method,
    params: MethodParams,
    matrix: torch.Tensor | None,
    extras: dict[str, Any],
    heatmap: torch.Tensor | None,
    timings: dict[str, float],
) -> AttributionResult:
    """The result of a run; with no `matrix`, the first stage of a one-pass method (rows pending). `heatmap`:
    the one a one-pass method delivered (equal to the rows' sum), else the rows' sum."""
    tokenizer = inputs.loaded.tokenizer
    source = [SourceToken(i, tokenizer.decode([i]), r) for i, r in zip(inputs.source_ids, inputs.ranges)]
    heatmap = heatmap if heatmap is not None else heatmap_of(matrix)
    return AttributionResult(
        source=source,
        target_ids=list(inputs.target.ids),
        target_tokens=[tokenizer.decode([i]) for i in inputs.target.ids],
        matrix=matrix.tolist() if matrix is not None else [],
        rows_pending=matrix is None,
        aggregate=heatmap.tolist(),
        explained_text=tokenizer.decode(inputs.target.ids),
        method=method.name,
        parameters=params.model_dump(),
        model_id=inputs.loaded.model_id,
        chat=inputs.chat,
        contrast=inputs.contrast,
        generated=inputs.target.generated,
        timings=timings,
        extras={**extras, "target": inputs.target.origin},
    )
