"""Speed and agreement against Inseq (Captum for the coalition methods), in one run: `make bench`.

The embedded model on examples/apples.prompt, its 4-token greedy continuation, each method with the
same parameters in salience and in Inseq (explaining log p of each target token, baselines = the unk
token embedding as Inseq uses). Prints per method: our time, our time relative to one forward pass of
the teacher-forced sequence, Inseq's time, the ratio and the Pearson correlation of the two
[target x source] matrices (methods Inseq lacks, such as AttnLRP, get dashes). TextGenSHAP, LIME and
KernelSHAP run against Captum's ShapleyValues, Lime and KernelShap on the same players and the plain
attention-masked game, compared per player. Not a test: machines are
shared and noisy, so every side is timed in the same process, warm, best of `--repeats`.
"""

from __future__ import annotations

import argparse
import functools
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

import salience.attribution as engine

PROMPT = Path(__file__).parents[1] / "examples" / "apples.prompt"
# name: (our parameters, Inseq's attribute() arguments or None where Inseq has no such method,
#        how Inseq's granular scores collapse the hidden dim)
CASES: dict[str, tuple[dict[str, Any], dict[str, Any] | None, str]] = {
    "saliency": ({}, {}, "l2"),
    "input_x_gradient": ({}, {}, "sum"),
    "integrated_gradients": (
        {"steps": 50, "rule": "gausslegendre", "baseline": "unk"},
        {"n_steps": 50},
        "sum",
    ),  # Captum default rule: gausslegendre
    "occlusion": ({"window": 1, "baseline": "unk"}, {}, "abs"),
    "attention": ({"layers": "last"}, {}, "attention"),
    "attnlrp": ({}, None, "sum"),  # Inseq has no AttnLRP; LXT 2.1 does not run on transformers 5
    "sequential_integrated_gradients": (
        {"steps": 50, "rule": "gausslegendre", "baseline": "unk", "granularity": "token", "normalise": False},
        {"n_steps": 50},
        "sum",
    ),
    # Inseq's POS-tag sampler needs NLTK data from the network: both sides draw uniformly instead
    "reagent": ({"replacement": "uniform"}, {}, "first"),
}
CAPTUM_CASES: dict[str, dict[str, Any]] = {
    "textgenshap": {"level": "sentence"},  # 4 sentences: exact on both sides (Captum's ShapleyValues)
    "lime": {"n_samples": 200},
    "kernelshap": {"n_samples": 200},
}
"""Coalition methods, against Captum's ShapleyValues / Lime / KernelShap on the plain attention-masked game
(one full forward per coalition, batched 16 at a time); compared per player, not per token."""
SINGLE_RUN = {"sequential_integrated_gradients", "reagent"}
"""Timed once, without a warm-up of their own (Inseq's SIG and ReAGent take over ten minutes on 2 CPU cores)."""
STOCHASTIC = {"reagent", "lime", "kernelshap"}
"""Compared by Spearman rank correlation (seeds differ between the two sides), not Pearson."""


def best_time(fn: Callable[[], Any], repeats: int, warm_up: bool = True) -> tuple[float, Any]:
    if warm_up:
        fn()
    best, out = float("inf"), None
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - start)
    return best, out


def inseq_logprob(args: Any) -> torch.Tensor:
    logits = args.attribution_model.output2logits(args.forward_output)
    target_ids = args.target_ids.reshape(logits.shape[0], 1).to(logits.device)
    return logits.float().log_softmax(dim=-1).gather(-1, target_ids).squeeze(-1)


def inseq_matrix(out: Any, n_source: int, collapse: str) -> torch.Tensor:
    """Inseq's [sequence, generated, ...] scores as our [target, source] matrix."""
    scores = out.sequence_attributions[0].target_attributions.float()
    if collapse == "l2":
        scores = scores.norm(dim=-1)
    elif collapse == "sum":
        scores = scores.sum(dim=-1)
    elif collapse == "first":  # the same score repeated over the hidden dim
        scores = scores[..., 0]
    elif collapse == "attention":  # [seq, gen, layers, heads]: last layer, mean over heads
        scores = scores[..., -1, :].mean(dim=-1)
    return torch.nan_to_num(scores[:n_source]).T


def pearson(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.flatten().double(), b.flatten().double()
    return float(torch.corrcoef(torch.stack([a, b]))[0, 1])


def spearman(a: torch.Tensor, b: torch.Tensor) -> float:
    """Mean over target rows of the rank correlation."""

    def ranks(m: torch.Tensor) -> torch.Tensor:
        return m.argsort(dim=1).argsort(dim=1).double()

    return sum(pearson(x, y) for x, y in zip(ranks(a), ranks(b))) / len(a)


def chain_step_note(result: Any, reference: Any, ours_time: float, ref_time: float) -> str:
    """Seconds per useful probe update on each side: the speed-up at equal stopping times.

    Both sides are stochastic with different random streams, so their probes stop after different
    numbers of steps; the time per probe update (of a probe not yet stopped) does not depend on that.
    """
    ours = ours_time / result.extras["chain_steps"]
    theirs = ref_time / reference.chain_steps
    return (
        f"\n    probe updates: ours {result.extras['chain_steps']} (steps per target {result.extras['steps']}), "
        f"Inseq {reference.chain_steps}; seconds per update: ours {ours * 1e3:.1f} ms, Inseq "
        f"{theirs * 1e3:.1f} ms: {theirs / ours:.1f}x at equal stopping times"
    )


def captum_row(name: str, inputs: engine.AttributionInput, forward_time: float, repeats: int) -> str:
    """Our coalition method against Captum's on the same players: time, speed-up, agreement per player."""
    from salience.evaluation.reference import captum_coalition_scores

    params = CAPTUM_CASES[name]
    ours_time, result = best_time(lambda: engine.get_method(name).attribute(inputs, params), repeats)
    players = [p["tokens"] for p in result.extras["players"]]
    ours = torch.tensor([[p["value"] for p in result.extras["players"]]])
    ref_time, theirs = best_time(
        lambda: captum_coalition_scores(inputs.loaded, inputs, players, name, n_samples=params.get("n_samples", 200)),
        repeats,
    )
    correlate = spearman if name in STOCHASTIC else pearson
    corr = correlate(ours, theirs[None].float())
    note = (
        f"  (Captum, {len(players)} players, spearman)"
        if name in STOCHASTIC
        else f"  (Captum, {len(players)} players, max |diff| {float((ours[0] - theirs).abs().max()):.1e})"
    )
    return (
        f"{name:22s} {ours_time:11.3f} {ours_time / forward_time:8.1f}x {ref_time:9.3f} "
        f"{ref_time / ours_time:8.1f}x {corr:8.4f}{note}\n    coalitions run: {result.extras['forwards']}, "
        f"full-forward equivalents {result.extras['full_forward_equivalents']}"
    )


def load_reference(name: str, model_dir: str, loaded: Any) -> Any:
    import inseq

    from salience.evaluation.reference import inseq_reagent

    if name == "reagent":
        return inseq_reagent(model_dir, loaded)
    return inseq.load_model(model_dir, name, device=str(loaded.device), model_kwargs={"dtype": loaded.dtype})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--methods", nargs="*", default=[*CASES, *CAPTUM_CASES])
    parser.add_argument("--device", default="auto")
    parser.add_argument("--dtype", default="float32")
    args = parser.parse_args()

    from inseq.attr.step_functions import register_step_function

    register_step_function(inseq_logprob, "salience_logprob", overwrite=True)
    loaded = engine.load_model(None, args.device, args.dtype)
    text = engine.read_prompt_file(PROMPT)
    doc = engine.parse_prompt(text)
    encoded = engine.encode_prompt(doc, loaded.tokenizer, chat=False, sink=False)  # as Inseq reads it
    target = engine.resolve_target(loaded, encoded.input_ids, None, None, max_new_tokens=4)
    target_ids = target.ids
    target_text = loaded.tokenizer.decode(target_ids)
    model_dir = str(engine.converted_gguf(engine.embedded_gguf_path(), print))
    n = len(encoded.input_ids)
    print(
        f"{PROMPT.name}: {n} source tokens, target {target_text!r} ({len(target_ids)} tokens), "
        f"device {loaded.device}, {loaded.dtype}, torch threads {torch.get_num_threads()}\n"
    )
    sequence = torch.tensor([encoded.input_ids + target_ids[:-1]], device=loaded.device)
    with torch.inference_mode():
        forward_time, _ = best_time(
            lambda: loaded.model(input_ids=sequence, logits_to_keep=len(target_ids), use_cache=False), args.repeats
        )
    print(f"one forward pass: {forward_time:.3f} s\n")
    print(f"{'method':22s} {'salience s':>11s} {'x forward':>9s} {'inseq s':>9s} {'speed-up':>9s} {'pearson':>8s}")

    for name in args.methods:
        if name in CAPTUM_CASES:
            inputs = engine.AttributionInput(loaded, encoded.input_ids, encoded.ranges, target)
            print(captum_row(name, inputs, forward_time, args.repeats))
            continue
        ours_params, inseq_args, collapse = CASES[name]
        method = engine.get_method(name)
        repeats, warm_up = (1, False) if name in SINGLE_RUN else (args.repeats, True)
        inputs = engine.AttributionInput(loaded, encoded.input_ids, encoded.ranges, target)
        ours_time, result = best_time(functools.partial(method.attribute, inputs, ours_params), repeats, warm_up)
        row = f"{name:22s} {ours_time:11.3f} {ours_time / forward_time:8.1f}x"
        if inseq_args is None:
            print(f"{row} {'-':>9s} {'-':>9s} {'-':>8s}")
            continue
        reference = load_reference(name, model_dir, loaded)
        ref_time, out = best_time(
            functools.partial(
                reference.attribute,
                text,
                text + target_text,
                attributed_fn="salience_logprob",
                show_progress=False,
                **inseq_args,
            ),
            repeats,
            warm_up,
        )
        theirs = inseq_matrix(out, n, collapse)
        ours = torch.tensor(result.matrix)
        if collapse == "abs":
            ours = ours.abs()
        same_tokens = [t.id for t in out.sequence_attributions[0].target] == encoded.input_ids + target_ids
        correlate = spearman if name in STOCHASTIC else pearson
        corr = correlate(ours, theirs) if ours.shape == theirs.shape else float("nan")
        note = "" if same_tokens else "  (tokenisation differs)"
        if name in STOCHASTIC:
            note += f"  (spearman){chain_step_note(result, reference, ours_time, ref_time)}"
        print(f"{row} {ref_time:9.3f} {ref_time / ours_time:8.1f}x {corr:8.4f}{note}")


if __name__ == "__main__":
    main()
