"""Where the first position's relevance comes from: the measurement behind the attention-sink treatment.

`.venv/bin/python benchmarks/first_position.py [--needles 20] [--ig-needles 6]` explains needle prompts
(benchmarks/needles.py) and the plain example prompts with AttnLRP, input x gradient and integrated
gradients, each as written and with one sink token the model sees first (not drawn in the file): the
tokenizer's end-of-text token and its BOS. The needles are also put in the chat template (template tokens
come first). Per condition and method it prints, and stores in benchmarks/results/first_position.md, the
first file token's share of all |score| and its rank, how often it is in the top 3, the share of what
comes before it (sink or template), and the rank of the answer-bearing token; and whether the greedy
answer's first word (the needle's value) stayed the same. Then the same on random tiny models of every
family. Every condition explains the same target: the answer found on the prompt as written.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from needles import needles
from run import Case, reading_figures

import salience.attribution as engine

ROOT = Path(__file__).parents[1]
METHODS = ["attnlrp", "input_x_gradient", "integrated_gradients"]
FIGURE_KEYS = ("first_share", "first_rank", "hidden_share", "answer_rank")  # run.reading_figures, as Figures
FIGURES = ROOT / "benchmarks" / "results" / "first_position.md"


@dataclass
class Figures:
    """One method on one case in one condition."""

    first_share: float
    first_rank: int
    before_share: float
    answer_rank: int | None
    same_answer: bool


def conditions(loaded, case: Case, chat_case: Case | None) -> dict[str, tuple[list[int], list]]:
    """The source ids and ranges of each condition."""
    tokenizer = loaded.tokenizer
    found = {"as written": (case.ids, case.ranges)}
    for label, token in (("+ end-of-text first", tokenizer.eos_token), ("+ BOS first", tokenizer.bos_token)):
        sink = tokenizer.convert_tokens_to_ids("<|endoftext|>") if "end-of-text" in label else tokenizer.bos_token_id
        if token is not None and sink is not None:
            found[label] = ([sink] + case.ids, [None] + case.ranges)
    if chat_case is not None:
        found["chat template"] = (chat_case.ids, chat_case.ranges)
    return found


def measure(loaded, case: Case, chat_case: Case | None, methods: list[str]) -> dict[tuple[str, str], Figures]:
    base, out = case.target, {}
    for label, (ids, ranges) in conditions(loaded, case, chat_case).items():
        try:
            greedy = engine.resolve_target(loaded, ids, None, None, max_new_tokens=len(base.ids)).ids
        except engine.ParameterError:  # the model ends its turn at once in this condition
            greedy = []
        same = first_word(loaded, greedy) == first_word(loaded, base.ids)
        for name in methods:
            inputs = engine.AttributionInput(loaded, ids, ranges, base, chat=label == "chat template")
            result = engine.get_method(name).attribute(inputs, None)
            seen = reading_figures(result, case)
            out[label, name] = Figures(*(seen[k] for k in FIGURE_KEYS), same)
    return out


def first_word(loaded, ids: list[int]) -> str:
    """The answer's first word: what a needle's answer copies (the rest of a continuation may wander)."""
    words = loaded.tokenizer.decode(ids).split()
    return words[0].strip(".,:;!?") if words else ""


def make_case(loaded, name: str, text: str, span=None, chat: bool = False) -> Case:
    """The prompt as written (no sink token: the conditions add them) and its greedy answer."""
    doc = engine.parse_prompt(text)
    encoded = engine.encode_prompt(doc, loaded.tokenizer, chat, sink=False)
    target = engine.resolve_target(loaded, encoded.input_ids, None, None, max_new_tokens=6)
    return Case(name, text, encoded.input_ids, encoded.ranges, target, chat, span)


def table(rows: dict[tuple[str, str], list[Figures]], title: str) -> list[str]:
    lines = [
        f"**{title}**",
        "",
        "| condition | method | first token share (median) | first token rank (median) | first token in top 3 | "
        "sink/template share (median) | answer-bearing rank (median) | answer's first word unchanged |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for (label, name), figures in rows.items():
        answers = [f.answer_rank for f in figures if f.answer_rank is not None]
        lines.append(
            f"| {label} | `{name}` | {100 * statistics.median(f.first_share for f in figures):.1f}% | "
            f"{statistics.median(f.first_rank for f in figures):g} | "
            f"{sum(f.first_rank <= 3 for f in figures)}/{len(figures)} | "
            f"{100 * statistics.median(f.before_share for f in figures):.1f}% | "
            f"{statistics.median(answers) if answers else 'n/a'} | "
            f"{sum(f.same_answer for f in figures)}/{len(figures)} |"
        )
    return lines


def collect(loaded, cases: list[tuple[Case, Case | None]], methods_of) -> dict:
    rows: dict[tuple[str, str], list[Figures]] = {}
    for number, (case, chat_case) in enumerate(cases):
        start = time.perf_counter()
        for key, figures in measure(loaded, case, chat_case, methods_of(number)).items():
            rows.setdefault(key, []).append(figures)
        print(f"  {case.name}: {time.perf_counter() - start:.1f} s", file=sys.stderr, flush=True)
    return dict(sorted(rows.items(), key=lambda item: (METHODS.index(item[0][1]), item[0][0])))


def tiny_rows(families: list[str], seeds: int) -> dict:
    """Random tiny models: random ids, the greedy 3 tokens explained, with and without a BOS first."""
    sys.path.insert(0, str(ROOT / "tests"))
    from tiny_models import tiny_family

    rows: dict[tuple[str, str], list[Figures]] = {}
    for family in families:
        for seed in range(seeds):
            loaded = tiny_family(family, seed)
            ids = torch.randint(4, 64, (24,), generator=torch.Generator().manual_seed(seed)).tolist()
            ranges = [(i, i + 1) for i in range(len(ids))]
            target = engine.resolve_target(loaded, ids, None, None, 3)
            case = Case(family, "x" * len(ids), ids, ranges, target, chat=False)
            for label, source, spans in (("as written", ids, ranges), ("+ BOS first", [3] + ids, [None] + ranges)):
                for name in METHODS:
                    inputs = engine.AttributionInput(loaded, source, spans, target)
                    result = engine.get_method(name).attribute(inputs, None)
                    seen = reading_figures(result, case)
                    rows.setdefault((label, name), []).append(Figures(*(seen[k] for k in FIGURE_KEYS), True))
    return dict(sorted(rows.items(), key=lambda item: (METHODS.index(item[0][1]), item[0][0])))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--needles", type=int, default=20)
    parser.add_argument("--ig-needles", type=int, default=6, help="needle prompts IG also runs on (32 steps each)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=FIGURES, help="where the tables go (docs/BENCHMARKS.md reads them)")
    args = parser.parse_args()
    started = time.perf_counter()
    loaded = engine.load_model()
    cases = []
    for found in needles(args.seed):
        case = make_case(loaded, found.name, found.text, found.span)
        answer = loaded.tokenizer.decode(case.target.ids)
        if answer.strip().startswith(found.answer):
            cases.append((case, make_case(loaded, found.name, found.text, found.span, chat=True)))
        if len(cases) == args.needles:
            break
    print(f"{len(cases)} needle prompts", file=sys.stderr)
    needle_rows = collect(loaded, cases, lambda i: METHODS if i < args.ig_needles else METHODS[:2])
    plain = [p for p in sorted((ROOT / "examples").iterdir()) if p.name != "README.md"]
    examples = []
    for path in plain:
        text = engine.read_prompt_file(path)
        doc = engine.parse_prompt(text)
        if not engine.use_chat(doc, loaded.has_chat_template) and len(text) < 4000:
            examples.append((make_case(loaded, path.name, text), None))
    example_rows = collect(loaded, examples, lambda i: METHODS[:2])
    families = ["llama", "qwen2", "gemma", "phi", "gpt2"]
    tiny = tiny_rows(families, seeds=4)
    lines = [
        *table(needle_rows, f"{len(cases)} needle prompts (IG on the first {args.ig_needles})"),
        "",
        *table(example_rows, f"the plain example prompts ({', '.join(c.name for c, _ in examples)})"),
        "",
        *table(tiny, f"random tiny models ({', '.join(families)}; 4 seeds each, 24 random tokens)"),
        "",
        f"`benchmarks/first_position.py --needles {args.needles} --ig-needles {args.ig_needles}`: "
        f"{(time.perf_counter() - started) / 60:.1f} min, {torch.get_num_threads()} torch threads.",
    ]
    print("\n".join(lines))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
