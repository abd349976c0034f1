"""vLLM's OpenAI-compatible API as a scoring backend: prompt log-probabilities of token-id prompts.

`/v1/completions` takes several token-id prompts per request and, with `prompt_logprobs: 0`, answers per
prompt one entry per token (the first null): the token's log p and its rank (1: the greedy choice), whatever
the top k. `/tokenize` says how the server splits text, and its context length.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from salience.attribution.progress import CancelCheck, no_cancel
from salience.attribution.remote.connection import Connection, RemoteError

TokenScore = tuple[float, int]
"""A prompt token's log p and how many tokens the model ranks above it (0: the greedy choice)."""
NO_PROMPT_LOGPROBS = (
    "{url} does not return log-probabilities of prompt tokens, which salience needs: serve the model with vLLM "
    "(`prompt_logprobs`) or SGLang (sglang+http://…); llama.cpp, Ollama and hosted chat APIs give only generated "
    "tokens' log-probabilities"
)


class VLLM:
    """Requests to one vLLM server for one served model name."""

    name = "vLLM"

    def __init__(self, connection: Connection, model: str) -> None:
        self.connection, self.model = connection, model
        self.max_sequences = 32
        """Prompts per request (vLLM schedules them together)."""
        self.max_tokens = 16384
        """Prompt tokens per request at most (a request of one longer prompt goes alone)."""
        self.max_logprobs = 20
        """Top tokens per position the server gives at most (vLLM's `--max-logprobs`, 20 by default)."""
        self.prompt_tokens = self.generated_tokens = 0
        """Prompt and generated tokens the server says it computed for our scoring requests (its `usage`)."""

    def score(
        self,
        sequences: Sequence[list[int]],
        cancelled: CancelCheck = no_cancel,
        on_answer: Callable[[int], None] | None = None,
    ) -> list[list[TokenScore | None]]:
        """Per sequence, per token, its log p given the tokens before it (None for the first), in order."""
        groups = self._groups(sequences)
        bodies = [self._score_body([sequences[i] for i in group]) for group in groups]
        done = [0]

        def answered(index: int) -> None:
            done[0] += len(groups[index])
            if on_answer:
                on_answer(done[0])

        answers = self.connection.post_many("/v1/completions", bodies, cancelled, answered)
        self.prompt_tokens += sum(_usage(answer, "prompt_tokens") for answer in answers)
        self.generated_tokens += sum(_usage(answer, "completion_tokens") for answer in answers)
        scores: list[list[TokenScore | None]] = [[] for _ in sequences]
        for group, answer in zip(groups, answers):
            for i, per_token in zip(group, self._prompt_logprobs(answer, [sequences[i] for i in group])):
                scores[i] = per_token
        return scores

    def _groups(self, sequences: Sequence[list[int]]) -> list[list[int]]:
        """Consecutive sequences per request, within `max_sequences` and `max_tokens` (the order kept, so a
        server that caches prefixes sees them side by side)."""
        groups: list[list[int]] = []
        tokens = 0
        for i, ids in enumerate(sequences):
            if not groups or len(groups[-1]) >= self.max_sequences or tokens + len(ids) > self.max_tokens:
                groups.append([])
                tokens = 0
            groups[-1].append(i)
            tokens += len(ids)
        return groups

    def _score_body(self, prompts: list[list[int]]) -> dict[str, Any]:
        return {
            "model": self.model,
            "prompt": prompts,
            "max_tokens": 1,  # the one generated token is not read; prompt log-probabilities come with it
            "temperature": 0.0,
            "prompt_logprobs": 0,
        }

    def _prompt_logprobs(self, answer: Any, prompts: list[list[int]]) -> list[list[TokenScore | None]]:
        """Each prompt's (log p, tokens ranked above) per token from an answer, checked against what was sent."""
        url = self.connection.base_url
        try:
            choices = sorted(answer["choices"], key=lambda c: c.get("index", 0))
        except (KeyError, TypeError, AttributeError):
            raise RemoteError(f"{url} answered a completion without choices: is it an OpenAI-compatible API?") from None
        if len(choices) != len(prompts):
            raise RemoteError(f"{url} answered {len(choices)} completions for {len(prompts)} prompts")
        return [self._entries(choice.get("prompt_logprobs"), ids, url) for choice, ids in zip(choices, prompts)]

    @staticmethod
    def _entries(entries: Any, ids: list[int], url: str) -> list[TokenScore | None]:
        if not isinstance(entries, list):
            raise RemoteError(NO_PROMPT_LOGPROBS.format(url=url))
        if len(entries) != len(ids):
            raise RemoteError(
                f"{url} scored {len(entries)} prompt positions for {len(ids)} tokens: its positions do not line up "
                "with the tokens sent (does it add a start token?)"
            )
        out: list[TokenScore | None] = [None]
        for position, (entry, token) in enumerate(zip(entries[1:], ids[1:]), start=1):
            scored = entry.get(str(token)) if isinstance(entry, dict) else None
            try:
                out.append((float(scored["logprob"]), int(scored["rank"]) - 1))
            except (TypeError, KeyError, ValueError):
                raise RemoteError(
                    f"{url} gave no log p for token {token} at prompt position {position}: its answer does not "
                    "follow vLLM's prompt_logprobs format"
                ) from None
        return out

    def top_tokens(self, ids: list[int], cancelled: CancelCheck = no_cancel) -> list[list[tuple[int, float]]]:
        """Per position of `ids`, the server's likeliest tokens there with their log p, likeliest first (as many
        as its `max_logprobs` allows; none at position 0)."""
        body = {**self._score_body([ids]), "prompt": ids, "prompt_logprobs": self.max_logprobs}
        answer = self.connection.post("/v1/completions", body, cancelled)
        try:
            entries = answer["choices"][0]["prompt_logprobs"]
            return [[]] + [
                sorted(((int(t), float(v["logprob"])) for t, v in entry.items()), key=lambda tv: -tv[1])
                for entry in entries[1:]
            ]
        except (KeyError, IndexError, TypeError, ValueError, AttributeError):
            raise RemoteError(NO_PROMPT_LOGPROBS.format(url=self.connection.base_url)) from None

    def generate(
        self, ids: list[int], max_new_tokens: int, stop_ids: set[int], cancelled: CancelCheck = no_cancel
    ) -> list[int]:
        """The greedy continuation of `ids`, without the token that ends the turn."""
        body = {
            "model": self.model,
            "prompt": ids,
            "max_tokens": max_new_tokens,
            "temperature": 0.0,
            "stop_token_ids": sorted(stop_ids),
            "skip_special_tokens": False,
            "logprobs": 0,
            "return_tokens_as_token_ids": True,
        }
        answer = self.connection.post("/v1/completions", body, cancelled)
        try:
            tokens = answer["choices"][0]["logprobs"]["tokens"]
            out = [int(t.removeprefix("token_id:")) for t in tokens]
        except (KeyError, IndexError, TypeError, ValueError, AttributeError):
            raise RemoteError(f"{self.connection.base_url} answered a completion without its token ids") from None
        while out and out[-1] in stop_ids:
            out.pop()
        return out

    def tokenize(self, text: str) -> tuple[list[int], int | None] | None:
        """How the server splits `text` (no special tokens) and its context length; None without `/tokenize`."""
        try:
            answer = self.connection.post(
                "/tokenize", {"model": self.model, "prompt": text, "add_special_tokens": False}
            )
        except RemoteError as err:
            if "HTTP 404" in str(err):
                return None
            raise
        try:
            return [int(t) for t in answer["tokens"]], answer.get("max_model_len")
        except (KeyError, TypeError, ValueError):
            raise RemoteError(f"{self.connection.base_url}/tokenize answered without tokens") from None

    def served_models(self) -> dict[str, str | None]:
        """The model names the server serves (`/v1/models`), each with where the server loaded it from."""
        answer = self.connection.get("/v1/models")
        try:
            return {str(m["id"]): m.get("root") for m in answer["data"]}
        except (KeyError, TypeError):
            raise RemoteError(f"{self.connection.base_url}/v1/models answered without a model list") from None


def _usage(answer: Any, count: str) -> int:
    """A count an answer's `usage` reports (0 where it reports none)."""
    usage = answer.get("usage") if isinstance(answer, dict) else None
    return int(usage.get(count) or 0) if isinstance(usage, dict) else 0
