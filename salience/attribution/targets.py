"""What is explained: the greedy continuation, a forced target, and an optional contrastive foil."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from salience.attribution.errors import ParameterError
from salience.attribution.model import LoadedModel
from salience.attribution.progress import CancelCheck, Progress, check_cancel, no_cancel, no_progress


@dataclass
class Target:
    """Target token ids y_1..y_T and, per step, an optional foil token id (contrast)."""

    ids: list[int]
    foil_ids: list[int | None]
    generated: bool

    @property
    def contrastive(self) -> bool:
        return any(f is not None for f in self.foil_ids)


def stop_ids(loaded: LoadedModel) -> set[int]:
    """Token ids that end a turn: eos of tokenizer and generation config, and <|im_end|>-style tokens."""
    ids: set[int] = set()
    for value in (loaded.tokenizer.eos_token_id, getattr(loaded.model.generation_config, "eos_token_id", None)):
        if isinstance(value, int):
            ids.add(value)
        elif value:
            ids.update(v for v in value if isinstance(v, int))
    for token in ("<|im_end|>", "<|eot_id|>", "<end_of_turn>", "<|end|>", "<|endoftext|>"):
        tid = loaded.tokenizer.convert_tokens_to_ids(token)
        if isinstance(tid, int) and tid != loaded.tokenizer.unk_token_id:
            ids.add(tid)
    return ids


@torch.inference_mode()
def greedy_continuation(loaded: LoadedModel, input_ids: list[int], max_new_tokens: int,
                        progress: Progress = no_progress, cancelled: CancelCheck = no_cancel) -> list[int]:
    """Greedy decoding with the KV cache, stopping at end of turn (the stop token is not kept)."""
    stops = stop_ids(loaded)
    ids = torch.tensor([input_ids], device=loaded.device)
    out = loaded.model(input_ids=ids, use_cache=True, logits_to_keep=1)
    generated: list[int] = []
    for step in range(max_new_tokens):
        check_cancel(cancelled)
        next_id = int(out.logits[0, -1].argmax())
        if next_id in stops:
            break
        generated.append(next_id)
        progress((step + 1) / max_new_tokens, "generating")
        if step + 1 < max_new_tokens:
            out = loaded.model(input_ids=torch.tensor([[next_id]], device=loaded.device),
                               past_key_values=out.past_key_values, use_cache=True, logits_to_keep=1)
    return generated


def text_ids(loaded: LoadedModel, text: str) -> list[int]:
    """Token ids of a target or foil string as a continuation (no special tokens added)."""
    ids = loaded.tokenizer(text, add_special_tokens=False)["input_ids"]
    if not ids:
        raise ParameterError(f"target text {text!r} has no tokens")
    return list(ids)


def resolve_target(loaded: LoadedModel, input_ids: list[int], target: str | None, contrast: str | None,
                   max_new_tokens: int, progress: Progress = no_progress, cancelled: CancelCheck = no_cancel) -> Target:
    """The explained target: forced text or the greedy continuation, with an aligned foil if asked."""
    if target is not None:
        ids, generated = text_ids(loaded, target), False
    else:
        ids, generated = greedy_continuation(loaded, input_ids, max_new_tokens, progress, cancelled), True
        if not ids:
            raise ParameterError("the model ended its turn at once: nothing to explain; give a `target`")
    foil = text_ids(loaded, contrast) if contrast is not None else []
    foil_ids = [foil[t] if t < len(foil) else None for t in range(len(ids))]
    if foil and all(f == i for f, i in zip(foil_ids, ids) if f is not None):
        raise ParameterError("contrast is the same as the target: nothing to contrast")
    return Target(ids, foil_ids, generated)
