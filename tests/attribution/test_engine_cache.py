"""explain()'s result cache and the server's token limit, on the tiny model saved as a local directory."""

from __future__ import annotations

import pytest

from salience.attribution import Request, ResultCache, explain, load_model, parse_prompt


@pytest.fixture(scope="module")
def tiny_local(tiny_model_dir):
    return load_model(str(tiny_model_dir))


def test_cache_answers_the_same_token_ids_at_new_offsets(tiny_local):
    cache = ResultCache(4)
    first = explain(tiny_local, parse_prompt("abc def"), cache=cache, owner="a")
    moved = explain(tiny_local, parse_prompt("---\nmax_new_tokens: 8\n---\nabc def"), cache=cache, owner="a")
    assert moved.timings.get("cached") and moved.matrix == first.matrix
    assert moved.source[0].range is first.source[0].range is None  # the sink token, in neither file
    assert [t.range[0] - first.source[i].range[0] for i, t in enumerate(moved.source) if i] == [
        len("---\nmax_new_tokens: 8\n---\n")
    ] * 7
    other = explain(tiny_local, parse_prompt("abc deg"), cache=cache)
    assert not other.timings.get("cached")
    cache.drop_owner("a")
    assert not explain(tiny_local, parse_prompt("abc def"), cache=cache).timings.get("cached")


def test_cache_is_least_recently_used():
    cache = ResultCache(2)
    for key in "abc":
        cache.put(key, key)  # type: ignore[arg-type]
    assert cache.get("a") is None and cache.get("c") == "c" and len(cache) == 2


def test_long_prompts_keep_their_last_tokens(tiny_local):
    result = explain(tiny_local, parse_prompt("x" * 40), Request(max_source_tokens=16))
    assert len(result.source) == 1 + 16 and result.extras["truncated_tokens"] == 24
    assert result.source[0].range is None and result.source[1].range == (24, 25)  # the sink token stays first
