"""The benchmark suite: every registered method, timed and checked for faithfulness, in one run.

`.venv/bin/python benchmarks/run.py [--quick]` (or `make benchmarks`) writes docs/BENCHMARKS.md and its
PNG plots. It explains the example prompts and a seeded set of needle prompts (door codes with
distractors, kept only where the embedded model answers with the right code) and reports per method:
attribution time and time relative to one forward pass, agreement with the reference implementation
(Captum, or Inseq for SIG) on a short probe prompt, Soft-NS / Soft-NC and the MoRF/LeRF area relative
to random placements of the same scores, and the needle hit rate. Sequential integrated gradients
costs words x steps forward passes: the full run takes hours on a CPU (`--quick` uses 4 steps). ReAGent's
agreement with Inseq is measured by benchmarks/speed.py (Inseq's run alone takes about 20 minutes).
"""

from __future__ import annotations

import argparse
import random
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
from report import write_report  # up front: a later edit cannot break the end of a long run

import salience.attribution as engine
from salience.evaluation.faithfulness import Faithfulness, faithfulness
from salience.evaluation.reference import CAPTUM_METHODS, captum_rows, inseq_sig_rows

ROOT = Path(__file__).parents[1]
DOCS = ROOT / "docs"
EXAMPLES = ["door-codes.prompt", "rag.prompt.md", "apples.prompt", "chat.prompty", "unicode.prompt"]
PROBE = "apples.prompt"  # the agreement check: short, no chat template, 4-token continuation
SIG = "sequential_integrated_gradients"
COLOURS = ["red", "blue", "green", "yellow", "white", "black", "orange", "purple"]


@dataclass
class Case:
    """One prompt, encoded, with its explained target and (for needle prompts) the needle's file span."""

    name: str
    text: str
    ids: list[int]
    ranges: list[tuple[int, int] | None]
    target: engine.Target
    chat: bool
    needle: tuple[int, int] | None = None


@dataclass
class Row:
    """What one method did on one case."""

    seconds: float
    per_forward: float
    faith: Faithfulness
    hit: bool | None
    gap: float | None = None  # a path method's largest completeness gap


@dataclass
class MethodReport:
    rows: list[Row] = field(default_factory=list)
    reference: tuple[str, float, float] | None = None  # (implementation, Pearson r, max |difference|)


def needle_prompt(rng: random.Random) -> tuple[str, str, tuple[int, int]]:
    """Door codes with distractors; returns (text, the asked code, the code's span in the asked sentence)."""
    colours = rng.sample(COLOURS, rng.randint(3, 5))
    codes = [str(rng.randint(1000, 9999)) for _ in colours]
    asked = rng.randrange(len(colours))
    sentences = [f"The code for the {c} door is {n}." for c, n in zip(colours, codes)]
    body = " ".join(sentences)
    text = (
        f"{body}\nQuestion: What is the code for the {colours[asked]} door?\n"
        f"Answer: The code for the {colours[asked]} door is"
    )
    start = text.index(sentences[asked]) + sentences[asked].index(codes[asked])
    return text, codes[asked], (start, start + 4)


def make_case(loaded, name: str, text: str, needle: tuple[int, int] | None = None) -> Case:
    doc = engine.parse_prompt(text)
    chat = engine.use_chat(doc, loaded.has_chat_template)
    encoded = engine.encode_prompt(doc, loaded.tokenizer, chat)
    target = engine.resolve_target(
        loaded, encoded.input_ids, doc.front_matter.target, doc.front_matter.contrast, doc.front_matter.max_new_tokens
    )
    return Case(name, text, encoded.input_ids, encoded.ranges, target, chat, needle)


def build_cases(loaded, needles: int, examples: list[str], seed: int) -> tuple[list[Case], int]:
    """The example prompts and the needle prompts that the model answers correctly (and how many were tried)."""
    cases = [make_case(loaded, name, engine.read_prompt_file(ROOT / "examples" / name)) for name in examples]
    rng, tried, kept = random.Random(seed), 0, 0
    while kept < needles and tried < needles * 4:
        tried += 1
        text, code, span = needle_prompt(rng)
        case = make_case(loaded, f"needle-{tried}", text, span)
        if loaded.tokenizer.decode(case.target.ids).strip().startswith(code):
            cases.append(case)
            kept += 1
    return cases, tried


def forward_seconds(loaded, case: Case) -> float:
    """One forward pass over x ++ y[:-1] (best of 3), the unit of the relative times."""
    ids = torch.tensor([case.ids + case.target.ids[:-1]], device=loaded.device)
    best = float("inf")
    with torch.inference_mode():
        for _ in range(3):
            start = time.perf_counter()
            loaded.model(input_ids=ids, logits_to_keep=len(case.target.ids))
            best = min(best, time.perf_counter() - start)
    return best


def needle_hit(result, needle: tuple[int, int], k: int = 5) -> bool:
    """Whether a token inside the needle span is among the k file tokens with the largest |score|."""
    return any(
        result.source[i].range[0] < needle[1] and result.source[i].range[1] > needle[0] for i in result.top_tokens(k)
    )


def run(args: argparse.Namespace) -> tuple[dict[str, MethodReport], list[Case], int]:
    loaded = engine.load_model()
    examples = EXAMPLES[:1] if args.quick else EXAMPLES
    cases, tried = build_cases(loaded, args.needles, examples, args.seed)
    print(f"{len(cases)} prompts ({len(cases) - len(examples)} needle prompts kept of {tried} tried)")
    reports = {name: MethodReport() for name in engine.method_names()}
    probe = make_probe(loaded)
    for name, report in reports.items():
        if name in CAPTUM_METHODS or name == SIG:
            report.reference = reference_agreement(loaded, probe, name, args.params.get(name))
            print(f"  {PROBE:18s} {name:22s} {report.reference[0]} r {report.reference[1]:.4f}", flush=True)
    for case in cases:
        unit = forward_seconds(loaded, case)
        for name, report in reports.items():
            inputs = engine.AttributionInput(loaded, case.ids, case.ranges, case.target, chat=case.chat)
            start = time.perf_counter()
            result = engine.get_method(name).attribute(inputs, args.params.get(name))
            seconds = time.perf_counter() - start
            faith = faithfulness(
                loaded, result, samples=args.samples, points=args.points, seed=args.seed, repeats=args.repeats
            )
            hit = needle_hit(result, case.needle) if case.needle else None
            report.rows.append(Row(seconds, seconds / unit, faith, hit, result.extras.get("max_completeness_gap")))
            print(f"  {case.name:18s} {name:22s} {seconds:6.2f} s  {faith.summary()}", flush=True)
    return reports, cases, tried


def make_probe(loaded) -> Case:
    doc = engine.parse_prompt(engine.read_prompt_file(ROOT / "examples" / PROBE))
    encoded = engine.encode_prompt(doc, loaded.tokenizer, chat=False)
    target = engine.resolve_target(loaded, encoded.input_ids, None, None, max_new_tokens=4)
    return Case(PROBE, "", encoded.input_ids, encoded.ranges, target, chat=False)


def reference_agreement(loaded, case: Case, name: str, params: dict | None) -> tuple[str, float, float]:
    """Pearson r and max |difference| of our [target x source] matrix and the reference's on `case`.

    SIG is compared per token and unnormalised: Inseq has no word granularity and reports raw rows.
    """
    params = {**(params or {}), **({"granularity": "token", "normalise": False} if name == SIG else {})}
    result = engine.get_method(name).attribute(
        engine.AttributionInput(loaded, case.ids, case.ranges, case.target), params
    )
    parsed = engine.get_method(name).parse_params(params).model_dump()
    if name == SIG:
        expected, reference = (
            inseq_sig_rows(loaded, case.ids, case.target, parsed["steps"], parsed["rule"], result.extras["baseline"]),
            "Inseq",
        )
    else:
        expected, reference = captum_rows(loaded, case.ids, case.target, name, **parsed), "Captum"
    ours, expected = torch.tensor(result.matrix), expected.float()
    pearson = torch.corrcoef(torch.stack([ours.flatten(), expected.flatten()]))[0, 1].item()
    return reference, pearson, (ours - expected).abs().max().item()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick",
        action="store_true",
        help="1 example, 4 needles, 8 IG and 4 SIG steps, ReAGent at most 300 steps, fewer mask "
        "samples (~25 min on 2 cores)",
    )
    parser.add_argument("--needles", type=int, default=None, help="needle prompts to keep (default 50; quick 4)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=DOCS)
    args = parser.parse_args()
    args.needles = args.needles if args.needles is not None else (4 if args.quick else 50)
    args.samples, args.points, args.repeats = (4, 5, 2) if args.quick else (8, 10, 3)
    args.params = (
        {"integrated_gradients": {"steps": 8}, SIG: {"steps": 4}, "reagent": {"max_steps": 300}} if args.quick else {}
    )
    started = time.perf_counter()
    reports, cases, tried = run(args)
    write_report(args, reports, cases, tried, time.perf_counter() - started)
    print(f"wrote {args.out / 'BENCHMARKS.md'}")


if __name__ == "__main__":
    main()
