"""Prefix KV-cache reuse: positions before the first changed token need not be recomputed."""

from __future__ import annotations

import copy
from typing import Any


def recording_cache(model: Any) -> Any:
    """An empty KV cache for `model` that `prefix_cache` can shorten to any prefix later. A sliding-window
    layer (Mistral, Gemma 2 and 3, gpt-oss) otherwise keeps only its window and cannot be cropped once a
    prompt is longer; recording, it keeps every position, as a full-attention layer does."""
    from transformers import DynamicCache

    cache = DynamicCache(config=model.config)
    cache.activate_past_recording()
    return cache


def prefix_cache(cache: Any, length: int, repeats: int) -> Any | None:
    """A copy of `cache` shortened to its first `length` positions and repeated `repeats` times in the batch.

    Returns None for an empty prefix (the caller then runs the whole sequence). The source cache is
    left untouched, so one unperturbed forward serves every batch.
    """
    if length <= 0:
        return None
    shortened = copy.deepcopy(cache)
    removing = shortened.get_seq_length() - length
    if removing < 0:
        raise ValueError(f"cache holds {cache.get_seq_length()} positions, fewer than the prefix {length}")
    if removing:
        shortened.crop(-removing)
    if shortened.get_seq_length() != length:
        raise RuntimeError(f"cache crop left {shortened.get_seq_length()} positions instead of {length}")
    if repeats > 1:
        shortened.batch_repeat_interleave(repeats)
    return shortened
