"""Replacement tokens for perturbation methods (ReAGent): what a token is swapped for, all offline.

Each strategy gives, per sequence position, a distribution over the model's real vocabulary from
which replacements are drawn:
- `model`: the explained model's own prediction at that position, p(. | tokens before it), from one
  forward of the unperturbed sequence (no extra model, no download), top `candidates`;
- `uniform`: uniform over the vocabulary;
- `mlm`: a masked LM from a local directory (safetensors only) fills in the masked token; its words
  are kept where the explained tokenizer spells them as one token.
Every strategy excludes special and added tokens, the original token at that position, and ids the
model has no embedding for (tokenizers may list more tokens than the model was trained with).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import torch

from salience.attribution.errors import ParameterError
from salience.attribution.model import LoadedModel
from salience.attribution.scoring import Scorer

_SPECIAL_NAMES = ("unk", "pad", "eos", "bos", "mask", "sep", "cls")


def real_vocab_size(loaded: LoadedModel) -> int:
    """How many ids the model can embed and the tokenizer can name (the smaller of the two; a served model's
    embedding is on its server: the tokenizer's)."""
    sizes = [] if loaded.served else [loaded.model.get_input_embeddings().weight.shape[0]]
    try:
        sizes.append(len(loaded.tokenizer))
    except TypeError:
        pass
    return min(sizes)


def excluded_ids(tokenizer: Any) -> set[int]:
    """Special tokens and tokens added to the vocabulary (role markers, tool tags): never a replacement."""
    ids = {getattr(tokenizer, f"{name}_token_id", None) for name in _SPECIAL_NAMES}
    ids.update(getattr(tokenizer, "all_special_ids", []) or [])
    ids.update(getattr(tokenizer, "added_tokens_decoder", {}) or {})
    return {i for i in ids if isinstance(i, int)}


def allowed_ids(loaded: LoadedModel) -> torch.Tensor:
    """The ids a replacement may take, ascending."""
    size = real_vocab_size(loaded)
    keep = torch.ones(size, dtype=torch.bool)
    keep[[i for i in excluded_ids(loaded.tokenizer) if i < size]] = False
    if not keep.any():
        raise ParameterError("no token of this vocabulary can serve as a replacement")
    return keep.nonzero().squeeze(1)


@dataclass
class Replacements:
    """Per position, candidate ids [N, K] with probabilities [N, K] (rows sum to 1; K may be 0 = uniform).

    Positions whose row has no candidates draw uniformly from `allowed` (other than the original).
    """

    ids: torch.Tensor
    probs: torch.Tensor
    allowed: torch.Tensor
    original: torch.Tensor

    def sample(self, positions: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """One replacement id for each entry of `positions` (a 1-D tensor of sequence positions)."""
        uniform = self._uniform(positions, generator)
        if self.ids.shape[1] == 0 or positions.numel() == 0:
            return uniform
        probs = self.probs[positions]
        has = probs.sum(dim=1) > 0
        pick = torch.multinomial(
            torch.where(has.unsqueeze(1), probs, torch.ones_like(probs)), 1, generator=generator
        ).squeeze(1)
        drawn = self.ids[positions].gather(1, pick.unsqueeze(1)).squeeze(1)
        return torch.where(has, drawn, uniform)

    def _uniform(self, positions: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Uniform over `allowed`, re-drawn (once, then shifted) where the draw is the original token."""
        n = len(self.allowed)
        index = torch.randint(n, positions.shape, generator=generator)
        same = self.allowed[index] == self.original[positions]
        index = torch.where(same, (index + 1) % n, index) if n > 1 else index
        return self.allowed[index]


def uniform_replacements(loaded: LoadedModel, sequence: torch.Tensor) -> Replacements:
    empty = torch.zeros((len(sequence), 0), dtype=torch.long)
    return Replacements(empty, empty.float(), allowed_ids(loaded), sequence.cpu())


def model_replacements(loaded: LoadedModel, scorer: Scorer, sequence: torch.Tensor, candidates: int) -> Replacements:
    """The explained model's own top `candidates` predictions for each position (position i-1 predicts i), from
    the scoring boundary (`Scorer.candidates`), their probabilities renormalised among them. Position 0 has
    no prediction and draws uniformly."""
    allowed = allowed_ids(loaded)
    ids, logp = scorer.candidates(min(candidates, len(allowed) - 1), allowed)
    probs = torch.softmax(logp[: len(sequence)], dim=1).nan_to_num(0.0)
    return Replacements(ids[: len(sequence)], probs, allowed, sequence.cpu())


def mlm_replacements(
    loaded: LoadedModel, sequence: torch.Tensor, path: str, candidates: int, context_chars: int = 200
) -> Replacements:
    """A masked LM's fill-ins for each position, mapped to single tokens of the explained model."""
    mlm, mlm_tokenizer = load_masked_lm(path)
    allowed = allowed_ids(loaded)
    ok = torch.zeros(real_vocab_size(loaded), dtype=torch.bool)
    ok[allowed] = True
    pieces = [loaded.tokenizer.decode([int(i)]) for i in sequence]
    ids = torch.zeros((len(pieces), candidates), dtype=torch.long)
    probs = torch.zeros((len(pieces), candidates))
    texts = [_masked_text(pieces, i, mlm_tokenizer.mask_token, context_chars) for i in range(len(pieces))]
    for start in range(0, len(texts), 32):
        batch = mlm_tokenizer(texts[start : start + 32], return_tensors="pt", padding=True, truncation=True)
        with torch.inference_mode():
            logits = mlm(**batch).logits.float()
        rows, cols = (batch["input_ids"] == mlm_tokenizer.mask_token_id).nonzero(as_tuple=True)
        for row, col in zip(rows.tolist(), cols.tolist()):
            at = start + row
            found = _mapped_fill_ins(
                logits[row, col], mlm_tokenizer, loaded.tokenizer, pieces[at], ok, int(sequence[at]), candidates
            )
            for k, (token_id, p) in enumerate(found):
                ids[at, k], probs[at, k] = token_id, p
    probs = probs / probs.sum(dim=1, keepdim=True).clamp(min=1e-12)
    return Replacements(ids, probs, allowed, sequence.cpu())


def _masked_text(pieces: list[str], i: int, mask: str, context_chars: int) -> str:
    left, right = "".join(pieces[:i])[-context_chars:], "".join(pieces[i + 1 :])[:context_chars]
    space = " " if pieces[i][:1].isspace() else ""
    return f"{left}{space}{mask}{right}"


def _mapped_fill_ins(
    logits: torch.Tensor,
    mlm_tokenizer: Any,
    tokenizer: Any,
    piece: str,
    ok: torch.Tensor,
    original: int,
    candidates: int,
) -> list[tuple[int, float]]:
    """Up to `candidates` (explained-model id, MLM probability): fill-ins that are one allowed token."""
    probs = torch.softmax(logits, dim=-1)
    top = probs.topk(min(len(probs), 4 * candidates))
    space = " " if piece[:1].isspace() else ""
    found: dict[int, float] = {}
    for p, mlm_id in zip(top.values.tolist(), top.indices.tolist()):
        word = mlm_tokenizer.convert_tokens_to_string([mlm_tokenizer.convert_ids_to_tokens(mlm_id)]).strip()
        if not word or mlm_id in mlm_tokenizer.all_special_ids:
            continue
        spelled = tokenizer(space + word, add_special_tokens=False)["input_ids"]
        if len(spelled) == 1 and spelled[0] < len(ok) and ok[spelled[0]] and spelled[0] != original:
            found[spelled[0]] = found.get(spelled[0], 0.0) + p
        if len(found) == candidates:
            break
    return list(found.items())


@lru_cache(maxsize=2)
def load_masked_lm(path: str) -> tuple[Any, Any]:
    """A masked LM and its tokenizer from a local directory: safetensors weights, no remote code."""
    from transformers import AutoModelForMaskedLM, AutoTokenizer

    directory = Path(path).expanduser()
    if not directory.is_dir():
        raise ParameterError(
            f"mlm_path {path!r} is not a directory; give a local masked LM "
            "(config.json, model.safetensors, tokenizer files)"
        )
    if not any(directory.glob("*.safetensors")):
        raise ParameterError(f"mlm_path {path!r} has no .safetensors weights (other formats are not loaded)")
    try:
        tokenizer = AutoTokenizer.from_pretrained(directory, local_files_only=True)
        model = AutoModelForMaskedLM.from_pretrained(
            directory, local_files_only=True, use_safetensors=True, trust_remote_code=False
        )
    except (OSError, ValueError, KeyError) as err:
        raise ParameterError(f"mlm_path {path!r}: not a masked LM transformers can load ({err})") from err
    if tokenizer.mask_token_id is None:
        raise ParameterError(f"mlm_path {path!r}: its tokenizer has no mask token")
    return model.eval().requires_grad_(False), tokenizer
