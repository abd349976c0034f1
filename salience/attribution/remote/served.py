"""A model served over HTTP, in the place of a loaded one: its tokenizer here, its log-probabilities there.

`connect` checks, before anything is explained, that the server answers, serves the model named, scores
prompt tokens, splits text as the local tokenizer does, and scores a position the same whether it ends the
prompt or not. A served model offers the perturbation methods (`Method.needs_weights` false).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import urlsplit

import torch

from salience.attribution.errors import ParameterError
from salience.attribution.model import LoadedModel, eos_ids
from salience.attribution.progress import CancelCheck, no_cancel
from salience.attribution.remote.connection import Connection, RemoteError
from salience.attribution.remote.vllm import VLLM
from salience.attribution.scoring import ZERO_VECTOR, OnBatch, Scored, Scorer, ScoreRequest
from salience.attribution.sources import ServerOptions, is_served

PROBE_TEXT = "Door code 7733, don't forget: 3.5 kg of 'naïve' café ☕ — 東京 at 12:30!\n\tEnd."
"""Text whose split tells two tokenizers apart: digits, punctuation, accents, emoji, Han, a tab."""
ALIGNMENT_TOLERANCE = 1e-3
"""How far a position's log p may move between two requests of the same server (batch float noise)."""


@dataclass
class ServedModel(LoadedModel):
    """A `LoadedModel` whose weights are on a server: tokenizer here, scores over HTTP (`backend`)."""

    served: ClassVar[bool] = True
    backend: Any = None
    context: int | None = None
    """The server's context length, where it says."""
    eos: set[int] = field(default_factory=set)
    """The ids that end a turn by the generation config beside the tokenizer, where there is one."""

    @property
    def context_length(self) -> int | None:
        return self.context

    @property
    def generation_eos_ids(self) -> set[int]:
        return self.eos

    def generate(
        self, input_ids: list[int], max_new_tokens: int, stops: set[int], cancelled: CancelCheck = no_cancel
    ) -> list[int]:
        """The greedy continuation, decoded on the server (the token that ends the turn left out)."""
        return self.backend.generate(input_ids, max_new_tokens, stops, cancelled)

    def embed(self, input_ids: torch.Tensor) -> torch.Tensor:
        raise ParameterError("a served model's embeddings are on its server: use a perturbation method")

    def scorer(self, asked: ScoreRequest) -> Scorer:
        return RemoteScorer(self.backend, asked)

    def close(self) -> None:
        self.backend.connection.close()


class RemoteScorer:
    """The scoring boundary (`scoring.Scorer`) over a served model: sequences sent as token ids, each cut after
    its last read position (a server computes every prompt token it is sent). A server scores the tokens it
    is sent, so where a sequence holds another token than the reference's at a read position, that position
    is read from one more sequence: the same tokens before it, the reference's token there."""

    def __init__(self, backend: VLLM, asked: ScoreRequest) -> None:
        if asked.also is not None:
            raise ParameterError(
                "a contrast needs log p of a token that is not in the sequence, which a served model does not give: "
                "remove `contrast`, or explain with a local model"
            )
        self.backend, self.cancelled = backend, asked.cancelled
        self.ids, self.positions = asked.reference, asked.positions
        self.token_forwards = 0
        self.reference = self.score(torch.tensor([self.ids]))

    def score(self, sequences: torch.Tensor, on_batch: OnBatch | None = None) -> Scored:
        if bool((sequences == ZERO_VECTOR).any()):
            raise ParameterError("a served model takes tokens only: use a token baseline (unk, pad, eos, mask, an id)")
        read = [p for p in self.positions if p < sequences.shape[1]]
        rows = sequences[:, : read[-1] + 1].tolist()
        sent, where = list(rows), []  # where[m][r]: the sent sequence that reads row m's position read[r]
        for m, row in enumerate(rows):
            places = []
            for p in read:
                if row[p] != self.ids[p]:
                    sent.append(row[:p] + [self.ids[p]])
                places.append(len(sent) - 1 if row[p] != self.ids[p] else m)
            where.append(places)
        told = (lambda done: on_batch(done, len(sent))) if on_batch else None
        scores = self.backend.score(sent, self.cancelled, told)
        self.token_forwards += sum(len(s) for s in sent)
        picked = [[scores[i][p] for i, p in zip(places, read)] for places in where]
        logprobs = torch.tensor([[s[0] for s in row] for row in picked], dtype=torch.float32)  # type: ignore[index]
        outranked = torch.tensor([[s[1] for s in row] for row in picked], dtype=torch.long)  # type: ignore[index]
        return Scored(logprobs, outranked)

    def candidates(self, k: int, allowed: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The server's top tokens at each position of the reference (as many as it gives: vLLM's
        `max_logprobs`, 20 by default), those not `allowed` and the reference's own left out, up to k."""
        tops = self.backend.top_tokens(self.ids, self.cancelled)
        keep = set(allowed.tolist())
        ids = torch.zeros((len(self.ids), k), dtype=torch.long)
        logp = torch.full((len(self.ids), k), float("-inf"))
        for i, top in enumerate(tops):
            chosen = [(t, lp) for t, lp in top if t in keep and t != self.ids[i]][:k]
            for j, (t, lp) in enumerate(chosen):
                ids[i, j], logp[i, j] = t, lp
        self.token_forwards += len(self.ids)
        return ids, logp


def connect(url: str, options: ServerOptions | None = None) -> ServedModel:
    """Connect to the server at `url` and check it (see the module's docstring); a one-line error otherwise."""
    options = options or ServerOptions()
    base = _base_url(url)
    api_key = _api_key(options.api_key_env)
    connection = Connection(base, api_key, options.limits)
    try:
        return _checked(connection, base, options.tokenizer, options.served_model)
    except BaseException:
        connection.close()
        raise


def _checked(connection: Connection, base: str, tokenizer_dir: str | None, served_model: str | None) -> ServedModel:
    backend = VLLM(connection, "")
    models = backend.served_models()
    name = _served_name(list(models), served_model, base)
    backend.model = name
    tokenizer, directory = _tokenizer([tokenizer_dir] if tokenizer_dir else [name, models[name]])
    context = _check_tokenizer(backend, tokenizer, directory, base)
    _check_alignment(backend, tokenizer, base)
    eos = _eos_ids(directory)
    here = torch.device("cpu")  # where scores land; the server keeps its own dtype
    return ServedModel(None, tokenizer, name, here, torch.float32, backend=backend, context=context, eos=eos)


def _base_url(url: str) -> str:
    """The server's root (the URL without a trailing /v1), its scheme plain http or https."""
    parts = urlsplit(url)
    if not is_served(url):
        raise RemoteError(f"{url!r} is not a server URL: give http://HOST:PORT/v1")
    scheme = parts.scheme.removeprefix("vllm+")
    path = parts.path.rstrip("/").removesuffix("/v1")
    return f"{scheme}://{parts.netloc}{path}"


def _api_key(variable: str | None) -> str | None:
    """The key in the environment variable named (never the key itself on a command line or in settings)."""
    if not variable:
        return None
    key = os.environ.get(variable)
    if not key:
        raise RemoteError(f"the environment variable {variable} (the API key) is not set")
    return key


def _served_name(names: list[str], asked: str | None, base: str) -> str:
    if asked is not None:
        if asked not in names:
            raise RemoteError(f"{base} serves {', '.join(names) or 'no model'}, not {asked!r}: check --served-model")
        return asked
    if len(names) != 1:
        raise RemoteError(f"{base} serves {', '.join(names) or 'no model'}: name one with --served-model")
    return names[0]


def _tokenizer(candidates: list[str | None]) -> tuple[Any, Path]:
    """The model's own tokenizer, from the first candidate folder that holds one: --tokenizer's, else the served
    name's or the folder the server loaded the model from, where either is a folder here (a server on this
    machine). The server's `/tokenize` then checks it (`_check_tokenizer`)."""
    from transformers import AutoTokenizer

    found = [Path(c).expanduser() for c in candidates if c and _has_tokenizer(Path(c).expanduser())]
    if not found:
        named = ", ".join(str(c) for c in candidates if c)
        raise RemoteError(
            f"a served model needs its tokenizer here, and {named} holds none: give --tokenizer DIR (a folder "
            "with the served model's tokenizer.json)"
        )
    path = found[0]
    try:
        return AutoTokenizer.from_pretrained(path, local_files_only=True, trust_remote_code=False), path
    except Exception as err:  # tokenizers raise many types for a missing or corrupt file
        raise RemoteError(f"cannot load the tokenizer in {path}: {err}") from err


def _has_tokenizer(path: Path) -> bool:
    return (path / "tokenizer.json").is_file() or (path / "tokenizer_config.json").is_file()


def _check_tokenizer(backend: VLLM, tokenizer: Any, directory: Path, base: str) -> int | None:
    """The server must split text as the local tokenizer does; returns its context length."""
    answer = backend.tokenize(PROBE_TEXT)
    if answer is None:
        return None
    served, context = answer
    local = list(tokenizer(PROBE_TEXT, add_special_tokens=False)["input_ids"])
    if served != local:
        at = next((i for i, (a, b) in enumerate(zip(served, local)) if a != b), min(len(served), len(local)))
        raise RemoteError(
            f"the tokenizer in {directory} is not the served model's: {base} splits a probe text differently "
            f"(from token {at}); give the served model's own tokenizer with --tokenizer"
        )
    return int(context) if context else None


def _check_alignment(backend: VLLM, tokenizer: Any, base: str) -> None:
    """A prompt's log p at a position must not depend on what follows it: score a sequence whole and cut."""
    ids = list(tokenizer(PROBE_TEXT, add_special_tokens=False)["input_ids"])[:12]
    whole, cut = backend.score([ids, ids[:6]])
    if any(abs(a[0] - b[0]) > ALIGNMENT_TOLERANCE for a, b in zip(whole[1:6], cut[1:6])):
        raise RemoteError(
            f"{base} scores the same prompt tokens differently when more tokens follow them: its positions are not "
            "aligned with the tokens sent, so salience cannot trust its scores"
        )


def _eos_ids(directory: Path) -> set[int]:
    """Ids that end a turn by the model's generation config (where the folder has one)."""
    from transformers import GenerationConfig

    try:
        return eos_ids(GenerationConfig.from_pretrained(directory, local_files_only=True).eos_token_id)
    except (OSError, ValueError):
        return set()


__all__ = ["RemoteError", "ServedModel", "connect"]
