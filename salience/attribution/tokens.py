"""Tokenise a prompt document and map every model token back to file characters.

Plain prompts are tokenised as written. Chat prompts are rendered with the tokenizer's chat
template; each message's content is located in the rendered string (in order), and tokens inside a
content span map back through the content's segment to file offsets. Tokens that only the template
adds (role headers, special tokens, a default system prompt) get no range.

A plain prompt starts with a sink token the file does not show: the tokenizer's BOS (else its end-of-
text token), unless the tokenizer put a special token first itself. The first position of a trained
causal LM collects attention, and so relevance, whatever token stands there (an attention sink; random
models show no such thing): on 20 needle prompts without the sink token, the file's first word took a
median 16 % of AttnLRP's |relevance| and was in its top 3 on 18; with it, 1 % and never, and the answer-
bearing token ranked higher (docs/BENCHMARKS.md, "Where the first position's relevance comes from").
Chat prompts already start with a template token. The sink token changed the first word of 3 of the 20
answers: a file whose model is used without a start token can say `sink: false` in its front matter.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from salience.attribution.errors import PromptError
from salience.prompt.document import PromptDocument, Segment

ENCODING = 2
"""How a prompt becomes model input; stored results made another way are not reused (2: the sink token)."""


@dataclass
class EncodedPrompt:
    """Model input ids with, per token, its file range (None for template-only tokens)."""

    input_ids: list[int]
    ranges: list[tuple[int, int] | None]
    text: str
    chat: bool
    sink: int = 0
    """How many leading tokens are a sink token added before the file's text (0 or 1)."""


def use_chat(doc: PromptDocument, has_template: bool) -> bool:
    """Chat mode: as the front matter says, else when the model has a template and the body has roles."""
    chat = doc.front_matter.chat
    if chat is None:
        return has_template and doc.has_roles
    if chat and not has_template:
        raise PromptError(
            "this model has no chat template: set `chat: false` in the front matter or use an instruction-tuned model"
        )
    return chat


def encode_prompt(doc: PromptDocument, tokenizer: Any, chat: bool, sink: bool = True) -> EncodedPrompt:
    """Token ids and file ranges for the document as the model will see it (`sink`: a plain prompt starts
    with a sink token, see the module's docstring, unless its front matter says `sink: false`)."""
    if chat:
        return _encode_chat(doc, tokenizer)
    encoded = _encode_pieces(tokenizer, doc.body.text, [(0, doc.body)], add_special_tokens=True, chat=False)
    wanted = sink and doc.front_matter.sink and encoded.input_ids and encoded.ranges[0] is not None
    first = sink_token(tokenizer) if wanted else None
    if first is None:
        return encoded
    return replace(encoded, input_ids=[first, *encoded.input_ids], ranges=[None, *encoded.ranges], sink=1)


def sink_token(tokenizer: Any) -> int | None:
    """The token a plain prompt starts with: the tokenizer's BOS, else its end-of-text token, else none."""
    for token_id in (getattr(tokenizer, "bos_token_id", None), getattr(tokenizer, "eos_token_id", None)):
        if isinstance(token_id, int):
            return token_id
    return None


def _encode_chat(doc: PromptDocument, tokenizer: Any) -> EncodedPrompt:
    messages = [(m.role, m.content) for m in doc.messages] or [("user", doc.body.strip())]
    rendered = tokenizer.apply_chat_template(
        [{"role": role, "content": seg.text} for role, seg in messages], tokenize=False, add_generation_prompt=True
    )
    placed: list[tuple[int, Segment]] = []
    cursor = 0
    for _, segment in messages:
        content = segment.strip()
        if not content.text:
            continue
        at = rendered.find(content.text, cursor)
        if at < 0:
            continue  # the template dropped or rewrote this content: its tokens keep no range
        placed.append((at, content))
        cursor = at + len(content.text)
    return _encode_pieces(tokenizer, rendered, placed, add_special_tokens=False, chat=True)


def _encode_pieces(
    tokenizer: Any, text: str, placed: list[tuple[int, Segment]], add_special_tokens: bool, chat: bool
) -> EncodedPrompt:
    """Tokenise `text`; a token overlapping a placed segment maps through it, others get no range."""
    if not getattr(tokenizer, "is_fast", False):
        raise PromptError(
            "this tokenizer gives no character offsets (not a fast tokenizer); use a model with a tokenizer.json"
        )
    encoding = tokenizer(
        text, add_special_tokens=add_special_tokens, return_offsets_mapping=True, return_special_tokens_mask=True
    )
    ranges: list[tuple[int, int] | None] = []
    for (start, end), special in zip(encoding["offset_mapping"], encoding["special_tokens_mask"]):
        ranges.append(None if special or start == end else _map_range(placed, start, end))
    return EncodedPrompt(list(encoding["input_ids"]), ranges, text, chat)


def _map_range(placed: list[tuple[int, Segment]], start: int, end: int) -> tuple[int, int] | None:
    for at, segment in placed:
        a, b = max(start, at), min(end, at + len(segment.text))
        if a < b:
            return segment.file_range(a - at, b - at)
    return None
