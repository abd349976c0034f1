"""What is explained: the greedy continuation, a forced target, and an optional contrastive foil."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from salience.attribution.compute.kv import prefix_cache
from salience.attribution.errors import ParameterError
from salience.attribution.model import LoadedModel
from salience.attribution.progress import CancelCheck, Progress, check_cancel, no_cancel, no_progress


@dataclass
class Target:
    """Target token ids y_1..y_T and, per step, an optional foil token id (contrast)."""

    ids: list[int]
    foil_ids: list[int | None]
    generated: bool
    origin: str = ""
    """How the ids were found: "forced", "generated", "draft verified", "draft rejected at token k" (then
    decoded on), or "draft" (a previous continuation that the method's first forward checks, `DraftCheck`,
    before anything is attributed to it)."""

    @property
    def draft(self) -> bool:
        return self.origin == "draft"

    @property
    def contrastive(self) -> bool:
        return any(f is not None for f in self.foil_ids)


def stop_ids(loaded: LoadedModel) -> set[int]:
    """Token ids that end a turn: eos of tokenizer and generation config, and <|im_end|>-style tokens."""
    ids = set(loaded.generation_eos_ids)
    if isinstance(loaded.tokenizer.eos_token_id, int):
        ids.add(loaded.tokenizer.eos_token_id)
    for token in ("<|im_end|>", "<|eot_id|>", "<end_of_turn>", "<|end|>", "<|endoftext|>"):
        tid = loaded.tokenizer.convert_tokens_to_ids(token)
        if isinstance(tid, int) and tid != loaded.tokenizer.unk_token_id:
            ids.add(tid)
    return ids


@torch.inference_mode()
def greedy_continuation(
    loaded: LoadedModel,
    input_ids: list[int],
    max_new_tokens: int,
    progress: Progress = no_progress,
    cancelled: CancelCheck = no_cancel,
) -> list[int]:
    """Greedy decoding with the KV cache, stopping at end of turn (the stop token is not kept).

    This is the reference every shortcut (`verify_draft`) must reproduce exactly. A served model decodes on
    its server.
    """
    if loaded.served:
        return loaded.generate(input_ids, max_new_tokens, stop_ids(loaded), cancelled)  # type: ignore[attr-defined]
    out = loaded.model(input_ids=torch.tensor([input_ids], device=loaded.device), use_cache=True, logits_to_keep=1)
    decoded = _decode(loaded, out.logits[0, -1], out.cache, [], max_new_tokens, 0.0, progress, cancelled)
    assert decoded is not None  # margin 0: no step is too close to call
    return decoded


def _decode(
    loaded: LoadedModel,
    logits: torch.Tensor,
    cache: Any,
    ids: list[int],
    max_new_tokens: int,
    margin: float,
    progress: Progress,
    cancelled: CancelCheck,
) -> list[int] | None:
    """Extend `ids` greedily from `logits` (the next-token logits after them) and the cache that produced them.

    None where a step's top two logits are closer than `margin`: the caller then decodes afresh.
    """
    stops = stop_ids(loaded)
    while len(ids) < max_new_tokens:
        check_cancel(cancelled)
        token, gap = _best(logits)
        if gap < margin:
            return None
        if token in stops:
            break
        ids.append(token)
        progress(len(ids) / max_new_tokens, "generating")
        if len(ids) < max_new_tokens:
            out = loaded.model(
                input_ids=torch.tensor([[token]], device=loaded.device), cache=cache, use_cache=True, logits_to_keep=1
            )
            logits, cache = out.logits[0, -1], out.cache
    return ids


def _best(logits: torch.Tensor) -> tuple[int, float]:
    """The argmax of one row of logits and its lead over the runner-up."""
    values, indices = logits.float().topk(2)
    return int(indices[0]), float(values[0] - values[1])


def decision_margin(dtype: torch.dtype) -> float:
    """How far the argmax must lead for logits from another forward (longer, with AttnLRP's rules installed)
    to decide a greedy step: a bound on their float noise against decoding's own logits, with room to spare.
    In fp32 the embedded model's logits differ by at most 1.6e-4 between the two on the examples; 16-bit
    logits carry about 8 bits of mantissa (not measured here: no GPU)."""
    return 1e-2 if torch.finfo(dtype).bits >= 32 else 0.5


@dataclass
class DraftVerdict:
    """What the logits over prompt ++ draft establish about the greedy continuation."""

    ids: list[int]
    """Greedy tokens established: the draft's confirmed prefix, then the clear argmax where it failed."""
    finished: bool
    """`ids` is the whole continuation."""
    step: int
    """The step where the check stopped: the first one not confirmed, or the end of the draft."""
    tie: bool = False
    """That step was too close to call from these logits: decode afresh."""

    @property
    def origin(self) -> str:
        """`Target.origin` of a continuation found after this verdict rejected a draft."""
        return f"draft rejected at token {self.step + 1}"


def judge_draft(
    logits: torch.Tensor, draft: list[int], stops: set[int], max_new_tokens: int, margin: float
) -> DraftVerdict:
    """Check a draft against the logits [len(draft) + 1, V] predicting each draft token and the one after.

    The draft is the greedy continuation when each of its tokens is the argmax at its step and the step
    after it ends the turn, or when it is `max_new_tokens` long.
    """
    values, indices = logits.float().topk(2, dim=-1)
    for step, (token, gap) in enumerate(zip(indices[:, 0].tolist(), (values[:, 0] - values[:, 1]).tolist())):
        if step == max_new_tokens:
            break
        if gap < margin:
            return DraftVerdict(draft[:step], False, step, tie=True)
        if token in stops:
            return DraftVerdict(draft[:step], True, step)
        if step == len(draft) or token != draft[step]:
            return DraftVerdict(draft[:step] + [token], step + 1 == max_new_tokens, step)
    return DraftVerdict(draft[:max_new_tokens], True, min(len(draft), max_new_tokens))


@torch.inference_mode()
def verify_draft(
    loaded: LoadedModel,
    input_ids: list[int],
    draft: list[int],
    max_new_tokens: int,
    progress: Progress = no_progress,
    cancelled: CancelCheck = no_cancel,
) -> tuple[list[int], str]:
    """The greedy continuation, from one forward over prompt ++ draft instead of decoding step by step,
    and how it was found (`Target.origin`).

    Where the draft fails, decoding resumes at the first failing step from that forward's KV cache.
    The result is always `greedy_continuation`'s (see `decision_margin`).
    """
    draft = draft[:max_new_tokens]
    ids = torch.tensor([input_ids + draft], device=loaded.device)
    out = loaded.model(input_ids=ids, use_cache=True, logits_to_keep=len(draft) + 1)
    verdict = judge_draft(out.logits[0], draft, stop_ids(loaded), max_new_tokens, decision_margin(loaded.dtype))
    found = continue_verdict(loaded, input_ids, verdict, max_new_tokens, progress, cancelled, out.cache)
    return found, "draft verified" if verdict.finished and verdict.ids == draft else verdict.origin


def continue_verdict(
    loaded: LoadedModel,
    input_ids: list[int],
    verdict: DraftVerdict,
    max_new_tokens: int,
    progress: Progress = no_progress,
    cancelled: CancelCheck = no_cancel,
    cache: Any | None = None,
) -> list[int]:
    """The whole greedy continuation from a verdict: decoding resumes after its tokens (from `cache`, the
    KV cache over prompt ++ draft, where given; else from one forward over prompt ++ its tokens)."""
    if verdict.finished:
        return verdict.ids
    if not verdict.tie:
        with torch.inference_mode():
            decoded = _resume(loaded, input_ids, verdict.ids, max_new_tokens, progress, cancelled, cache)
        if decoded is not None:
            return decoded
    return greedy_continuation(loaded, input_ids, max_new_tokens, progress, cancelled)


def _resume(
    loaded: LoadedModel,
    input_ids: list[int],
    ids: list[int],
    max_new_tokens: int,
    progress: Progress,
    cancelled: CancelCheck,
    cache: Any | None,
) -> list[int] | None:
    kept = len(input_ids) + len(ids) - 1  # the cache must hold prompt ++ ids[:-1]; ids[-1] is fed next
    try:
        cache = prefix_cache(cache, kept, 1) if cache is not None else None
    except (ValueError, RuntimeError):  # a cache that cannot be cropped (past a sliding window)
        cache = None
    feed = ids[-1:] if cache is not None else input_ids + ids
    out = loaded.model(
        input_ids=torch.tensor([feed], device=loaded.device), cache=cache, use_cache=True, logits_to_keep=1
    )
    return _decode(
        loaded,
        out.logits[0, -1],
        out.cache,
        list(ids),
        max_new_tokens,
        decision_margin(loaded.dtype),
        progress,
        cancelled,
    )


def text_ids(loaded: LoadedModel, text: str) -> list[int]:
    """Token ids of a target or foil string as a continuation (no special tokens added)."""
    ids = loaded.tokenizer(text, add_special_tokens=False)["input_ids"]
    if not ids:
        raise ParameterError(f"target text {text!r} has no tokens")
    return list(ids)


def resolve_target(
    loaded: LoadedModel,
    input_ids: list[int],
    target: str | None,
    contrast: str | None,
    max_new_tokens: int,
    progress: Progress = no_progress,
    cancelled: CancelCheck = no_cancel,
    draft: list[int] | None = None,
) -> Target:
    """The explained target: forced text or the greedy continuation (checked against a `draft` of it by one
    forward where given), with an aligned foil if asked."""
    if target is not None:
        return with_foil(loaded, text_ids(loaded, target), "forced", contrast)
    if draft and not loaded.served:  # a draft saves local decoding steps; a server decodes as fast itself
        return with_foil(loaded, *verify_draft(loaded, input_ids, draft, max_new_tokens, progress, cancelled), contrast)
    return with_foil(
        loaded, greedy_continuation(loaded, input_ids, max_new_tokens, progress, cancelled), "generated", contrast
    )


def with_foil(loaded: LoadedModel, ids: list[int], origin: str, contrast: str | None) -> Target:
    """A target of `ids` (found as `origin` says) with the contrast's tokens aligned step by step."""
    if not ids:
        raise ParameterError("the model ended its turn at once: nothing to explain; give a `target`")
    foil = text_ids(loaded, contrast) if contrast is not None else []
    foil_ids = [foil[t] if t < len(foil) else None for t in range(len(ids))]
    if foil and all(f == i for f, i in zip(foil_ids, ids) if f is not None):
        raise ParameterError("contrast is the same as the target: nothing to contrast")
    return Target(ids, foil_ids, generated=origin != "forced", origin=origin)
