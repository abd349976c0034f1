"""Segment-level TextGenSHAP on long prompts, against Captum, in one run: `.venv/bin/python benchmarks/long_prompt.py`.

1. examples/rag.prompt.md (118 tokens, 5 segments): exact Shapley values of the segments, ours against
   Captum's `ShapleyValues` on the plain attention-masked game (one full forward per coalition): the
   same values, and the time of each.
2. examples/long-rag.prompt.md (1,029 tokens, 8 documents and a question, target " 1886."): our
   segment-level result (permutation sampling to the default tolerance) with its coalition count,
   model calls and full-forward equivalents, and whether the relevant document ranks first among the
   documents; against Captum's `ShapleyValueSampling` on the same segments at equal permutations
   (`--captum-permutations`, 4 by default: it needs one full forward per coalition).
Not a test: timings on a shared machine are noisy, so both sides run in this one process.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

import salience.attribution as engine
from salience.evaluation.reference import captum_coalition_scores, masked_game

EXAMPLES = Path(__file__).parents[1] / "examples"


def prompt_inputs(loaded, name: str) -> engine.AttributionInput:
    doc = engine.parse_prompt(engine.read_prompt_file(EXAMPLES / name))
    encoded = engine.encode_prompt(doc, loaded.tokenizer, chat=False)
    target = engine.resolve_target(
        loaded, encoded.input_ids, doc.front_matter.target, None, doc.front_matter.max_new_tokens
    )
    return engine.AttributionInput(loaded, encoded.input_ids, encoded.ranges, target)


def timed(fn):
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def forward_seconds(loaded, inputs: engine.AttributionInput) -> float:
    with torch.inference_mode():
        loaded.model(input_ids=inputs.sequence_ids(), logits_to_keep=1)
        return timed(lambda: loaded.model(input_ids=inputs.sequence_ids(), logits_to_keep=1))[0]


def segments(result) -> list[dict]:
    return [p for p in result.extras["players"] if p["level"] == "segment"]


def describe(name: str, inputs: engine.AttributionInput, seconds: float, result, forward: float) -> None:
    extras = result.extras
    print(f"{name}: {inputs.n_source} source tokens, target {result.explained_text!r}; one forward {forward:.2f} s")
    print(
        f"  ours: {seconds:.1f} s = {seconds / forward:.1f} forwards; {extras['forwards']} coalitions, "
        f"{extras['model_calls']} model calls, {extras['full_forward_equivalents']} full-forward equivalents, "
        f"{extras['permutations']} permutations (0: exact), largest stderr {extras['max_stderr']:.3f}"
    )
    for player in segments(result):
        error = "exact" if player["exact"] else f"± {player['stderr']:.3f}"
        print(f"    {player['value']:+8.3f} {error:>9s}  {player['label']}")
    documents = [p for p in segments(result) if p["label"].startswith("Document")]
    best = max(documents, key=lambda p: p["value"])
    print(f"  highest-valued document: {best['label']}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--captum-permutations", type=int, default=4)
    parser.add_argument("--skip-exact", action="store_true", help="skip the rag.prompt.md comparison")
    args = parser.parse_args()
    loaded = engine.load_model()
    print(f"torch threads {torch.get_num_threads()}, {loaded.device}, {loaded.dtype}\n")
    method = engine.get_method("textgenshap")

    if not args.skip_exact:
        inputs = prompt_inputs(loaded, "rag.prompt.md")
        forward = forward_seconds(loaded, inputs)
        ours_time, result = timed(lambda: method.attribute(inputs, {"level": "segment"}))
        describe("rag.prompt.md", inputs, ours_time, result, forward)
        players = [p["tokens"] for p in segments(result)]
        captum_time, theirs = timed(lambda: captum_coalition_scores(loaded, inputs, players, "textgenshap"))
        ours = torch.tensor([p["value"] for p in segments(result)])
        print(
            f"  Captum ShapleyValues (exact, {len(players)} players): {captum_time:.1f} s; "
            f"max |difference| {float((ours - theirs).abs().max()):.1e}; ours {captum_time / ours_time:.1f}x faster\n"
        )

    inputs = prompt_inputs(loaded, "long-rag.prompt.md")
    forward = forward_seconds(loaded, inputs)
    ours_time, result = timed(lambda: method.attribute(inputs, {"level": "segment"}))
    describe("long-rag.prompt.md", inputs, ours_time, result, forward)
    players = [p["tokens"] for p in segments(result)]
    captum_time = captum_sampling(loaded, inputs, players, args.captum_permutations)
    ours_each, captum_each = ours_time / result.extras["permutations"], captum_time / args.captum_permutations
    print(
        f"  Captum ShapleyValueSampling, {args.captum_permutations} permutations: {captum_time:.1f} s; "
        f"per permutation ours {ours_each:.2f} s, Captum {captum_each:.2f} s: {captum_each / ours_each:.1f}x"
    )


def captum_sampling(loaded, inputs: engine.AttributionInput, players: list[list[int]], permutations: int) -> float:
    from captum.attr import ShapleyValueSampling

    n = len(players)
    torch.manual_seed(0)
    explainer = ShapleyValueSampling(masked_game(loaded, inputs, players))
    seconds, _ = timed(
        lambda: explainer.attribute(
            torch.ones(1, n),
            baselines=torch.zeros(1, n),
            feature_mask=torch.arange(n)[None],
            n_samples=permutations,
            perturbations_per_eval=4,
        )
    )
    return seconds


if __name__ == "__main__":
    main()
