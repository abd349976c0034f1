"""The benchmark suite: every registered method, timed and checked for faithfulness, resumable.

`.venv/bin/python benchmarks/run.py [--quick] [--report-only]` (or `make benchmarks`) explains every
example prompt and the needle prompts (benchmarks/needles.py; kept only where the embedded model answers
with the asked value) with every method, and stores each (prompt, method) row in benchmarks/results/ as
it finishes (benchmarks/store.py): stop it at any time and run it again to go on where it stopped.
docs/BENCHMARKS.md and its plots are written from the stored rows (benchmarks/report.py): attribution
time and time relative to one forward pass, agreement with the reference implementation (Captum, or
Inseq for SIG) on a short probe prompt, Soft-NS / Soft-NC (Bernoulli and fixed-rate) and the MoRF/LeRF
area relative to random placements of the same scores, the rank of the answer-bearing token on needle
prompts, and the first file token's share and rank. `--quick` stores its rows apart (results/quick/).
"""

from __future__ import annotations

import argparse
import platform
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from itertools import islice
from pathlib import Path

import torch
from needles import needles
from report import LONG_TOKENS, NO_SINK, write_report  # up front: a later edit cannot break the end of a long run
from store import RESULTS, RowStore, row_key

import salience.attribution as engine
from salience.evaluation.faithfulness import faithfulness
from salience.evaluation.reference import CAPTUM_METHODS, captum_rows, inseq_sig_rows
from salience.prompt.words import word_starts
from salience.views.reading import Reading

ROOT = Path(__file__).parents[1]
DOCS = ROOT / "docs"
PROBE = "apples.prompt"  # the agreement check: short, no chat template, 4-token continuation
SIG = "sequential_integrated_gradients"
BATCH_PARAMS = {SIG: {"steps": 8}, "reagent": {"probes": 4, "max_steps": 100}}
"""The full run's parameters where they differ from the defaults; every other method runs at its defaults."""
LONG_PARAMS = {"reagent": {"probes": 2, "max_steps": 20}}
"""On a prompt over report.LONG_TOKENS tokens (examples/long-rag.prompt.md), the batch methods' parameters."""
LONG_SKIPPED = {
    SIG: "one forward-mode pass per token and step, each from its word to the end: at 2 steps the 1,029-token "
    "example needs 3,087 passes, and its first 1% took 252 s on 2 cores (benchmarks/run.py, 2026-12-05), so "
    "3 to 7 hours for one row (later passes are shorter): more than the whole suite's budget"
}
"""Methods not run on a prompt over report.LONG_TOKENS tokens, and why (the report says so)."""
REASONS = {
    SIG: "costs words × steps forward passes: at its default 50 steps one needle prompt takes about 7 minutes "
    "on 2 cores (63 s at 8 steps); 8 steps, and not run on the 1,029-token example (below). Its "
    "completeness gap is reported, so what fewer steps cost shows in the table",
    "reagent": "costs steps × target tokens × probes forward passes; its chains stop on their own well before "
    "100 steps here, so the probes set the cost: 16 (the default) took 232 s on one needle prompt, 4 take about "
    "a minute; on the 1,029-token example 2 probes and 20 steps",
    "textgenshap, lime, kernelshap": "at their defaults (8–16 s on a needle prompt; their forward budget caps "
    "them on the long example)",
    "attention, attnlrp, input_x_gradient, integrated_gradients, occlusion, saliency": "the interactive methods, "
    "at their defaults",
    "metrics": "8 mask samples and 10 removal steps per curve, as before, but 2 random placements rather than 3: "
    "the metrics cost about 20 s a row on a needle prompt, more than most methods",
}
"""Why each method runs at the settings it does, for the report."""
QUICK_PARAMS = {"integrated_gradients": {"steps": 8}, SIG: {"steps": 4}, "reagent": {"max_steps": 100}}


@dataclass
class Case:
    """One prompt, encoded, with its explained target and (for needle prompts) the answer-bearing span."""

    name: str
    text: str
    ids: list[int]
    ranges: list[tuple[int, int] | None]
    target: engine.Target
    chat: bool
    span: tuple[int, int] | None = None
    sink: int = 0  # leading sink tokens the engine put before the file's text
    contrast: str | None = None  # the front matter's foil: the target is explained rather than it

    @property
    def needle(self) -> bool:
        return self.span is not None

    def source(self, sink: bool) -> tuple[list[int], list[tuple[int, int] | None]]:
        """The model's input ids and ranges: as the engine builds them, or without its sink token."""
        cut = 0 if sink else self.sink
        return self.ids[cut:], self.ranges[cut:]


@dataclass(frozen=True)
class Variant:
    """A row's method: a registered method with the suite's parameters, on the input with or without the
    sink token (`NO_SINK`: the default method as it ran before the sink token, for the before/after)."""

    method: str
    params: dict | None
    sink: bool = True


def case_variants(
    case: Case, params: dict[str, dict], long_params: dict[str, dict] | None, skipped: Iterable[str] = ()
) -> dict[str, Variant]:
    """The rows of one case: on a prompt over LONG_TOKENS tokens, `long_params` override `params` and the
    methods named in `skipped` are left out."""
    if len(case.ids) <= LONG_TOKENS:
        return variants(params)
    found = variants({**params, **(long_params or {})})
    return {name: variant for name, variant in found.items() if name not in skipped}


def variants(params: dict[str, dict]) -> dict[str, Variant]:
    """Every registered method, and the default method without the sink token."""
    found = {name: Variant(name, params.get(name) or None) for name in engine.method_names()}
    found[engine.DEFAULT_METHOD + NO_SINK] = Variant(engine.DEFAULT_METHOD, params.get(engine.DEFAULT_METHOD), False)
    return found


def example_names() -> list[str]:
    return sorted(p.name for p in (ROOT / "examples").iterdir() if p.is_file() and p.name != "README.md")


def make_case(loaded, name: str, text: str, span: tuple[int, int] | None = None) -> Case:
    doc = engine.parse_prompt(text)
    chat = engine.use_chat(doc, loaded.has_chat_template)
    encoded = engine.encode_prompt(doc, loaded.tokenizer, chat)
    front = doc.front_matter
    target = engine.resolve_target(loaded, encoded.input_ids, front.target, front.contrast, front.max_new_tokens)
    return Case(name, text, encoded.input_ids, encoded.ranges, target, chat, span, encoded.sink, front.contrast)


def build_cases(loaded, count: int, examples: list[str], seed: int) -> tuple[list[Case], int]:
    """`count` needle prompts the model answers right, then the example prompts, the longest last (and how
    many needle prompts were tried)."""
    cases, tried = [], 0
    for found in islice(needles(seed), count * 4):
        tried += 1
        case = make_case(loaded, found.name, found.text, found.span)
        if loaded.tokenizer.decode(case.target.ids).strip().startswith(found.answer):
            cases.append(case)
        if len(cases) == count:
            break
    texts = {name: engine.read_prompt_file(ROOT / "examples" / name) for name in examples}
    return cases + [make_case(loaded, name, texts[name]) for name in sorted(texts, key=lambda n: len(texts[n]))], tried


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


def reading_figures(result: engine.AttributionResult, case: Case) -> dict:
    """What the user sees: the answer-bearing token's rank, the first file token's share and rank, and the
    share of the tokens the file does not show (a chat template's). Ranked among tokens, as the stored rows
    were: a word-level rank would merge the answer's digits into one part."""
    reading = Reading.of(result, case.text, "token")
    first = reading.spans[0]
    answer = [reading.rank(s) for s in reading.spans if case.span and s.start < case.span[1] and s.end > case.span[0]]
    return {
        "answer_rank": min(answer) if answer else None,
        "first_share": reading.share(first),
        "first_rank": reading.rank(first),
        "hidden_share": reading.hidden_share,
        "file_tokens": len(reading.spans),
    }


def compute_row(loaded, case: Case, name: str, variant: Variant, settings: dict, unit: float) -> dict:
    source = case.source(variant.sink)
    inputs = engine.AttributionInput(
        loaded, *source, case.target, chat=case.chat, contrast=case.contrast, text=case.text or None
    )
    start = time.perf_counter()
    result = engine.get_method(variant.method).attribute(inputs, variant.params)
    seconds = time.perf_counter() - start
    faith = faithfulness(loaded, result, **settings)
    return {
        "case": case.name,
        "method": name,
        "needle": case.needle,
        "seconds": seconds,
        "per_forward": seconds / unit,
        "row_seconds": time.perf_counter() - start,
        "faith": faith.to_dict(),
        "gap": result.extras.get("max_completeness_gap"),
        "explained": result.explained_text,
        "parameters": result.parameters,
        **reading_figures(result, case),
    }


def case_key(loaded, case: Case, variant: Variant, settings: dict) -> str:
    """What decides a row: the model's input and target, the method and its parameters, the metrics, and for
    a method whose players are words, where the words start (a change of the word rule re-keys its rows)."""
    ids, ranges = case.source(variant.sink)
    words = {"words": word_starts(case.text, ranges)} if engine.get_method(variant.method).word_players else {}
    return row_key(
        ids=ids, target=case.target.ids, chat=case.chat, method=variant.method,
        params=variant.params, settings=settings, model=loaded.model_id, dtype=str(loaded.dtype),
        **({"contrast": case.contrast} if case.contrast else {}), **words,
    )  # fmt: skip


def run_rows(
    loaded,
    cases: list[Case],
    methods: Callable[[Case], dict[str, Variant]],
    store: RowStore,
    settings: dict,
    on_row: Callable[[dict, bool], None] = lambda row, stored: None,
    on_case: Callable[[Case], None] = lambda case: None,
) -> list[dict]:
    """Every (case, method) row: stored ones read back, the others computed and stored as each finishes
    (`on_case` hears when a case's rows are all there)."""
    rows, sitting = [], datetime.now(UTC).isoformat(timespec="seconds")
    machine = f"{platform.machine()}, {torch.get_num_threads()} torch threads, {loaded.device}"
    for case in cases:
        unit = None
        for name, variant in methods(case).items():
            key = case_key(loaded, case, variant, settings)
            row = store.get(case.name, name, key)
            if row is None:
                unit = unit or forward_seconds(loaded, case)
                row = compute_row(loaded, case, name, variant, settings, unit)
                row.update(key=key, sitting=sitting, machine=machine)
                store.put(case.name, name, row)
                on_row(row, False)
            else:
                on_row(row, True)
            rows.append(row)
        on_case(case)
    return rows


def committer(store: RowStore) -> Callable[[Case], None]:
    """Commit a case's stored rows to git (those files only), so a run on a machine that goes away loses at
    most the case in progress."""

    def commit(case: Case) -> None:
        folder = store.path(case.name, "x").parent
        git = ["git", "-C", str(store.root)]
        subprocess.run([*git, "add", "--", str(folder)], check=False)
        subprocess.run([*git, "commit", "-q", "-m", f"benchmarks: rows of {case.name}", "--", str(folder)], check=False)

    return commit


def make_probe(loaded) -> Case:
    """The agreement probe as written: no sink token, which SIG keeps fixed and Inseq would move along a path."""
    doc = engine.parse_prompt(engine.read_prompt_file(ROOT / "examples" / PROBE))
    encoded = engine.encode_prompt(doc, loaded.tokenizer, chat=False, sink=False)
    target = engine.resolve_target(loaded, encoded.input_ids, None, None, max_new_tokens=4)
    return Case(PROBE, "", encoded.input_ids, encoded.ranges, target, chat=False)


def reference_row(loaded, case: Case, name: str, params: dict | None) -> dict:
    """Pearson r and max |difference| of our [target x source] matrix and the reference's on `case`.

    SIG is compared per token and unnormalised: Inseq has no word granularity and reports raw rows.
    """
    params = {**(params or {}), **({"granularity": "token", "normalise": False} if name == SIG else {})}
    result = engine.get_method(name).attribute(
        engine.AttributionInput(loaded, case.ids, case.ranges, case.target), params
    )
    parsed = engine.get_method(name).parse_params(params).model_dump()
    if name == SIG:
        steps, rule, baseline = parsed["steps"], parsed["rule"], result.extras["baseline"]
        expected, reference = inseq_sig_rows(loaded, case.ids, case.target, steps, rule, baseline), "Inseq"
    else:
        expected, reference = captum_rows(loaded, case.ids, case.target, name, **parsed), "Captum"
    ours, expected = torch.tensor(result.matrix), expected.float()
    pearson = torch.corrcoef(torch.stack([ours.flatten(), expected.flatten()]))[0, 1].item()
    difference = (ours - expected).abs().max().item()
    return {"method": name, "reference": reference, "pearson": pearson, "max_difference": difference}


def reference_rows(loaded, methods: dict[str, Variant], store: RowStore, stored_only: bool = False) -> dict[str, dict]:
    probe, found = make_probe(loaded), {}
    for name, variant in methods.items():
        params = variant.params
        if name not in CAPTUM_METHODS and name != SIG:
            continue
        key = row_key(ids=probe.ids, target=probe.target.ids, method=name, params=params, model=loaded.model_id)
        row = store.get("_reference", name, key)
        if row is None and stored_only:
            continue
        if row is None:
            row = {**reference_row(loaded, probe, name, params), "key": key}
            store.put("_reference", name, row)
        print(f"  {PROBE:18s} {name:32s} {row['reference']} r {row['pearson']:.4f}", flush=True)
        found[name] = row
    return found


def print_row(row: dict, stored: bool) -> None:
    faith = engine_free_summary(row["faith"])
    how = "stored" if stored else f"{row['seconds']:7.2f} s"
    print(f"  {row['case']:24s} {row['method']:32s} {how}  {faith}", flush=True)


def engine_free_summary(faith: dict) -> str:
    return f"NC {faith['nc_log_ratio']:+.2f} NS {faith['ns_log_ratio']:+.2f} area {faith['area']:.3f}"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick", action="store_true", help="1 example, 4 needles, fewer steps and mask samples (~40 min)"
    )
    parser.add_argument("--needles", type=int, default=None, help="needle prompts to keep (default 20; quick 4)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--commit", action="store_true", help="git-commit each prompt's rows as they are all stored")
    parser.add_argument("--report-only", action="store_true", help="write the report from the stored rows only")
    parser.add_argument("--results", type=Path, default=None, help="where rows are stored (default benchmarks/results)")
    parser.add_argument("--out", type=Path, default=DOCS)
    args = parser.parse_args(argv)
    args.needles = args.needles if args.needles is not None else (4 if args.quick else 20)
    args.settings = dict(samples=4, points=5, repeats=2, seed=args.seed) if args.quick else dict(
        samples=8, points=10, repeats=2, seed=args.seed
    )  # fmt: skip
    args.params = QUICK_PARAMS if args.quick else BATCH_PARAMS
    args.reasons = {} if args.quick else REASONS
    store = RowStore(args.results or (RESULTS / "quick" if args.quick else RESULTS))
    loaded = engine.load_model()
    examples = ["door-codes.prompt"] if args.quick else example_names()
    cases, tried = build_cases(loaded, args.needles, examples, args.seed)
    print(f"{len(cases)} prompts ({len(cases) - len(examples)} needle prompts kept of {tried} tried)", flush=True)
    args.long_params = None if args.quick else LONG_PARAMS
    args.long_skipped = {} if args.quick else LONG_SKIPPED
    methods = partial(case_variants, params=args.params, long_params=args.long_params, skipped=args.long_skipped)
    references = reference_rows(loaded, variants(args.params), store, stored_only=args.report_only)
    if args.report_only:
        keys = ((c, m, case_key(loaded, c, v, args.settings)) for c in cases for m, v in methods(c).items())
        rows = [r for c, m, key in keys if (r := store.get(c.name, m, key)) is not None]
    else:
        on_case = committer(store) if args.commit else (lambda case: None)
        rows = run_rows(loaded, cases, methods, store, args.settings, print_row, on_case)
    write_report(args, rows, references, cases, tried, expected=sum(len(methods(c)) for c in cases))
    print(f"wrote {args.out / 'BENCHMARKS.md'}")


if __name__ == "__main__":
    sys.exit(main())
