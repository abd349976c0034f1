"""The method contract and the helpers every method shares.

A method subclasses `Method`, declares its capability flags and a pydantic `Params` model, and
implements `scores()`, which returns the [target x source] matrix. `Method.attribute()` is the one
public signature: it validates parameters, times the run and builds the `AttributionResult`.

Every method sees the same teacher-forced sequence x ++ y[:-1]: position L-1+t predicts y_t, and
causality makes the later positions irrelevant to f_t, so all target steps share one sequence.
"""

from __future__ import annotations

import time
from contextlib import AbstractContextManager, contextmanager, nullcontext
from abc import ABC, abstractmethod
from dataclasses import dataclass, field, replace
from typing import Any, Callable, ClassVar, Iterator, Literal

import torch
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from salience.attribution.aggregation import heatmap_of
from salience.attribution.allocator import large_blocks_mapped
from salience.attribution.errors import ParameterError
from salience.attribution.model import LoadedModel
from salience.attribution.patching import checkpointed_layers, interruptible_layers
from salience.attribution.progress import CancelCheck, Progress, check_cancel, no_cancel, no_progress
from salience.attribution.result import AttributionResult, SourceToken
from salience.attribution.targets import Target

CostClass = Literal["cheap", "moderate", "expensive"]


class MethodParams(BaseModel):
    """Parameters every method accepts; methods extend this model."""

    model_config = ConfigDict(extra="forbid")

    memory_budget_mb: int = Field(default=2048, ge=16, description="activation memory per batch")


@dataclass
class AttributionInput:
    """What a method explains: source ids with their file ranges, and the target."""

    loaded: LoadedModel
    source_ids: list[int]
    ranges: list[tuple[int, int] | None]
    target: Target
    chat: bool = False
    contrast: str | None = None
    progress: Progress = no_progress
    cancelled: CancelCheck = no_cancel
    timings: dict[str, float] = field(default_factory=dict)
    draft_check: Callable[[torch.Tensor, list[int], Any], None] | None = None
    """Checks a draft target on the logits [T + 1, V] of the forward over x ++ y, given with its KV cache
    (or None), and raises `DraftRejected` where the draft is not the greedy continuation."""
    on_heatmap: Callable[[AttributionResult], None] | None = None
    """Listens for the first stage: the heatmap alone, before the per-step rows (`Method.one_pass`)."""
    heatmap: torch.Tensor | None = None
    """The heatmap a one-pass method delivered (the result's aggregate, equal to the rows' sum)."""
    deliver: Callable[[torch.Tensor], None] | None = field(default=None, repr=False)
    """Set by `Method.attribute` while a listener waits: hands the one-pass heatmap over."""
    stop: CancelCheck | None = None
    """Checked inside a pass, at every decoder layer (`cancelled` is checked between batches, where a
    shared server may also let another run take its turn); None: `cancelled`."""

    @property
    def n_source(self) -> int:
        return len(self.source_ids)

    @property
    def n_target(self) -> int:
        return len(self.target.ids)

    def sequence_ids(self) -> torch.Tensor:
        """x ++ y[:-1] as a [1, N] tensor: the last T positions predict y_1..y_T.

        For a draft target, x ++ y: the extra last position checks that the turn ends after y_T.
        """
        ids = self.source_ids + (self.target.ids if self.target.draft else self.target.ids[:-1])
        return torch.tensor([ids], device=self.loaded.device)

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
    one_pass: ClassVar[bool] = False
    """The heatmap comes from one backward pass of sum_t f_t, before the rows (a linear gradient method)."""
    checks_draft: ClassVar[bool] = False
    """The first forward is the plain teacher-forced one, over x ++ y, and checks a draft target there
    (`AttributionInput.draft_check`); other methods get a target verified beforehand."""
    Params: ClassVar[type[MethodParams]] = MethodParams

    def supports(self, loaded: LoadedModel) -> bool:
        """Whether this method can explain `loaded` (all can, unless a method says otherwise)."""
        return True

    def parse_params(self, params: dict[str, Any] | None) -> MethodParams:
        try:
            return self.Params.model_validate(params or {})
        except ValidationError as err:
            problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in err.errors())
            known = ", ".join(self.Params.model_fields)
            raise ParameterError(f"{self.name}: {problems} (parameters: {known})") from err

    def attribute(self, inputs: AttributionInput, params: dict[str, Any] | None = None) -> AttributionResult:
        """Explain `inputs.target` by `inputs.source_ids`; the one signature all methods share."""
        parsed = self.parse_params(params)
        check_cancel(inputs.cancelled)
        start = time.perf_counter()

        def deliver(heatmap: torch.Tensor) -> None:  # the first stage, while the rows are still to come
            inputs.heatmap = heatmap.detach().float().cpu()
            if inputs.on_heatmap is not None:
                timings = {**inputs.timings, "attribute": time.perf_counter() - start}
                inputs.on_heatmap(build_result(replace(inputs, timings=timings), self, parsed, None, {}))

        inputs.heatmap, inputs.deliver = None, deliver if self.one_pass and inputs.on_heatmap else None
        matrix, extras = self.scores(inputs, parsed)
        inputs.timings["attribute"] = time.perf_counter() - start
        inputs.progress(1.0, self.name)
        return build_result(inputs, self, parsed, matrix.detach().float().cpu(), extras)

    @abstractmethod
    def scores(self, inputs: AttributionInput, params: Any) -> tuple[torch.Tensor, dict[str, Any]]:
        """The [T, L] fp32 score matrix and method-specific extras."""


def build_result(inputs: AttributionInput, method: Method, params: MethodParams, matrix: torch.Tensor | None,
                 extras: dict[str, Any]) -> AttributionResult:
    """The result of a run; with no `matrix`, the first stage of a one-pass method (rows pending)."""
    tokenizer = inputs.loaded.tokenizer
    source = [SourceToken(i, tokenizer.decode([i]), r) for i, r in zip(inputs.source_ids, inputs.ranges)]
    heatmap = inputs.heatmap if inputs.heatmap is not None else heatmap_of(matrix)
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
        timings=dict(inputs.timings),
        extras={**extras, "target": "draft verified" if inputs.target.draft else inputs.target.origin},
    )


Quantity = Callable[[torch.Tensor, Target], torch.Tensor]
"""What a gradient method differentiates: logits [B, T, V] and the target to f [B, T]."""


def explained_quantity(logits: torch.Tensor, target: Target) -> torch.Tensor:
    """f_t = log p(y_t) (minus log p(foil_t) with a contrast) from logits [B, T, V], in fp32: [B, T]."""
    return _target_minus_foil(torch.log_softmax(logits.float(), dim=-1), target)


def explained_logit(logits: torch.Tensor, target: Target) -> torch.Tensor:
    """f_t = logit of y_t (minus the foil's logit with a contrast), in fp32: [B, T]; what LRP conserves."""
    return _target_minus_foil(logits.float(), target)


def _target_minus_foil(scores: torch.Tensor, target: Target) -> torch.Tensor:
    ids = torch.tensor(target.ids, device=scores.device)
    f = scores.gather(-1, ids.expand(scores.shape[0], -1).unsqueeze(-1)).squeeze(-1)
    if target.contrastive:
        foil = torch.tensor([x if x is not None else -1 for x in target.foil_ids], device=scores.device)
        has_foil = foil >= 0
        g = scores.gather(-1, foil.clamp(min=0).expand(scores.shape[0], -1).unsqueeze(-1)).squeeze(-1)
        f = f - torch.where(has_foil, g, torch.zeros_like(g))
    return f


def target_logits(loaded: LoadedModel, embeds: torch.Tensor, n_target: int, **kwargs: Any) -> torch.Tensor:
    """Logits at the last `n_target` positions only (the LM head is large next to a small model)."""
    return loaded.model(inputs_embeds=embeds, logits_to_keep=n_target, use_cache=False, **kwargs).logits


def items_per_batch(loaded: LoadedModel, seq_len: int, n_target: int, budget_mb: int, vjps: int = 0,
                    layers_held: int | None = None) -> int:
    """How many sequences of `seq_len` fit the activation budget (a coarse per-layer estimate).

    `vjps` is the number of backward passes batched over one forward (0 for forward-only work), or
    the number of tangents carried along in forward mode. `layers_held`: how many layers' activations
    live at once (None: all, as a backward pass needs; a pass without a graph holds about one, plus
    the KV cache of every layer).
    """
    return max(1, int(budget_mb * 2**20 // item_bytes(loaded, seq_len, n_target, vjps, layers_held)))


def item_bytes(loaded: LoadedModel, seq_len: int, n_target: int, vjps: int = 0,
               layers_held: int | None = None) -> int:
    """Estimated activation bytes of one sequence (see `items_per_batch`)."""
    config = loaded.model.config
    hidden = getattr(config, "hidden_size", 768)
    inter = getattr(config, "intermediate_size", 4 * hidden)
    layers = getattr(config, "num_hidden_layers", 12)
    heads = getattr(config, "num_attention_heads", 12)
    elem = 4 if vjps else torch.finfo(loaded.dtype).bits // 8
    held = layers if layers_held is None else min(layers, layers_held)
    activations = seq_len * held * (12 * hidden + 3 * inter + 2 * heads * seq_len) * elem
    activations += seq_len * (layers - held) * 4 * hidden * elem  # keys and values (at most)
    logits = n_target * getattr(config, "vocab_size", 32000) * 12
    return (activations + logits) * (1 + vjps)


CHECKPOINT_TOKENS = 2048
"""From this many tokens, backward passes recompute each layer instead of keeping its activations.

Measured on the embedded model: one backward through 2,000 tokens peaks at 3.3 GB without it (the
activations grow linearly with the prompt); checkpointing costs one extra forward.
"""


MAPPED_TOKENS = 4096
"""From this many tokens, passes hand freed activations back to the system (`large_blocks_mapped`).

Measured on the embedded model, saliency: at 4,096 tokens peak RSS 1.8 GB instead of 3.0, in the same
time; at 2,048 tokens 1.4 GB instead of 2.2, but 40% slower (page faults), so not there.
"""


def gradient_batches(inputs: AttributionInput, n_items: int, embeds_for: Callable[[range], torch.Tensor],
                     budget_mb: int, quantity: Quantity = explained_quantity) -> Iterator[tuple[range, torch.Tensor]]:
    """Yield (items, d f_t / d embeds for every target t) as fp32 [B, T, N, d], batched to the budget.

    Each item is one teacher-forced sequence; by causality its forward gives every f_t, and the T
    backward passes run batched over that one forward (`is_grads_batched`): T times fewer forwards
    than explaining each target step with its own sequence.
    """
    n_target = inputs.n_target
    seq_len = inputs.n_source + n_target - 1
    loaded = inputs.loaded
    checkpointing = seq_len >= CHECKPOINT_TOKENS  # a long prompt: one layer's activations at a time
    held = 2 if checkpointing else None
    size = items_per_batch(loaded, seq_len, n_target, budget_mb, vjps=n_target, layers_held=held)
    batches = chunks(n_items, size)
    for done, items in enumerate(batches):
        check_cancel(inputs.cancelled)
        embeds = embeds_for(items).detach().requires_grad_(True)
        with torch.enable_grad(), long_pass(loaded.model, seq_len) if checkpointing else nullcontext():
            f = quantity(target_logits(inputs.loaded, embeds, n_target), inputs.target)  # [B, T]
            grad = step_gradients(f, embeds)
        inputs.progress((done + 1) / len(batches), "gradients")
        yield items, grad


def step_gradients(f: torch.Tensor, embeds: torch.Tensor) -> torch.Tensor:
    """d f_t / d embeds for every step t of f [B, T], as fp32 [B, T, N, d]: T backward passes batched."""
    n_target = f.shape[1]
    selectors = torch.eye(n_target, device=f.device).unsqueeze(1).expand(-1, f.shape[0], -1)
    (grad,) = torch.autograd.grad(f, embeds, grad_outputs=selectors, is_grads_batched=True)
    return grad.float().transpose(0, 1)


Heatmap = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
"""A linear method's scores from embeddings [N, d] and a gradient [N, d] of f: [N]."""


def target_gradients(inputs: AttributionInput, quantity: Quantity = explained_quantity,
                     heatmap: Heatmap | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Input embeddings [N, d] and d f_t / d e for every target step t: [T, N, d] (fp32), from one forward.

    The forward first checks a draft target (`inputs.draft_check`). With `heatmap` and a listener for
    the first stage (`inputs.deliver`), one backward pass of sum_t f_t gives the heatmap, handed over
    before the rows (one batched backward over the same graph). `inputs.stop` can end any of these
    passes at a decoder layer.
    """
    loaded, n_target, timings = inputs.loaded, inputs.n_target, inputs.timings
    embeds = inputs.embeddings().requires_grad_(True)  # [1, N, d]
    checkpointing = embeds.shape[1] >= CHECKPOINT_TOKENS
    staged = heatmap is not None and inputs.deliver is not None
    with torch.enable_grad(), long_pass(loaded.model, embeds.shape[1]) if checkpointing else nullcontext():
        with interruptible_layers(loaded.model, inputs.stop or inputs.cancelled):  # one pass: stop inside it
            start = time.perf_counter()
            checking = inputs.target.draft and inputs.draft_check is not None
            out = loaded.model(inputs_embeds=embeds, logits_to_keep=n_target + 1 if inputs.target.draft else n_target,
                               use_cache=checking and not checkpointing)  # a rejected draft decodes on from it
            if checking:
                inputs.draft_check(out.logits[0].detach(), inputs.target.ids, out.cache)
            f = quantity(out.logits[:, :n_target], inputs.target)  # [1, T]
            start = _timed(timings, "attribute/forward", start)
            if staged:
                (total,) = torch.autograd.grad(f.sum(), embeds, retain_graph=True)
            else:
                grads = step_gradients(f, embeds)[0]
            start = _timed(timings, "attribute/backward", start)
        if staged:
            inputs.deliver(heatmap(embeds[0].detach().float(), total[0].float())[:inputs.n_source])
            check_cancel(inputs.cancelled)
            grads = step_gradients(f, embeds)[0]  # the layers' gradient hooks still stop it inside
            _timed(timings, "attribute/rows", start)
    return embeds[0].detach().float(), grads


def _timed(timings: dict[str, float], name: str, start: float) -> float:
    """Record the seconds since `start` under `name`; returns now, the next part's start."""
    now = time.perf_counter()
    timings[name] = now - start
    return now


@contextmanager
def long_pass(model: torch.nn.Module, seq_len: int) -> Iterator[None]:
    """A backward pass through a long prompt: layers recomputed, freed activations returned to the system."""
    with checkpointed_layers(model), freed_blocks_returned(seq_len):
        yield


def freed_blocks_returned(seq_len: int) -> AbstractContextManager[None]:
    """`large_blocks_mapped()` for a pass through `MAPPED_TOKENS` or more positions, else nothing."""
    return large_blocks_mapped() if seq_len >= MAPPED_TOKENS else nullcontext()


def chunks(n: int, size: int) -> list[range]:
    return [range(i, min(n, i + size)) for i in range(0, n, size)]


def baseline_embedding(loaded: LoadedModel, baseline: str | int) -> torch.Tensor:
    """The [d] embedding that stands for 'no token': zero, or the unk/pad/eos/mask/given token's."""
    if baseline == "zero":
        dim = loaded.model.get_input_embeddings().embedding_dim
        return torch.zeros(dim, device=loaded.device, dtype=loaded.dtype)
    token_id = baseline if isinstance(baseline, int) else _special_id(loaded, baseline)
    return loaded.embed(torch.tensor([token_id]))[0].detach()


def _special_id(loaded: LoadedModel, name: str) -> int:
    token_id = getattr(loaded.tokenizer, f"{name}_token_id", None)
    if not isinstance(token_id, int):
        raise ParameterError(f"baseline {name!r}: this tokenizer has no {name} token; use 'zero' or a token id")
    return token_id
