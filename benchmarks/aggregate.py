"""Which per-token heatmap is more faithful: the mean of L1-normalised rows, or the sum of the rows?

`.venv/bin/python benchmarks/aggregate.py [--needles 12]` explains the suite's needle prompts (facts
among distractors, benchmarks/needles.py) once per method, then scores both
definitions of the heatmap over the same [target x source] matrix:
- the rank of the answer-bearing token (the best-ranked token of the asked code) among the file's tokens,
- Soft-NC and Soft-NS (log ratio to random placements of the same scores; NC higher, NS lower is better),
- the MoRF/LeRF area against random.
The sum of the rows is the attribution of the completion as a whole (Σ_t f_t), which a method linear in
f computes with one backward pass; the normalised mean needs every row. Figures: docs/AGGREGATE.md.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from dataclasses import replace
from pathlib import Path

import torch
from run import build_cases  # noqa: E402  (benchmarks/ is the script's folder)

from salience.attribution import AttributionInput, get_method, load_model, mean_of_normalised, sum_of_rows
from salience.evaluation.faithfulness import faithfulness

ROOT = Path(__file__).parents[1]
DEFINITIONS = {"normalised mean": mean_of_normalised, "sum of rows": sum_of_rows}


def answer_rank(result, needle: tuple[int, int]) -> int:
    """1-based rank by |score| of the best-ranked file token inside the needle's span."""
    ranked = result.top_tokens(len(result.source))
    return next(
        r
        for r, i in enumerate(ranked, 1)
        if result.source[i].range[0] < needle[1] and result.source[i].range[1] > needle[0]
    )


def measure(loaded, cases, methods: list[str], args: argparse.Namespace) -> dict:
    rows: dict = {m: {d: [] for d in DEFINITIONS} for m in methods}
    for case in cases:
        for method in methods:
            inputs = AttributionInput(loaded, case.ids, case.ranges, case.target, chat=case.chat)
            result = get_method(method).attribute(inputs)
            matrix = torch.tensor(result.matrix)
            for name, aggregate in DEFINITIONS.items():
                variant = replace(result, aggregate=aggregate(matrix).tolist())
                faith = faithfulness(
                    loaded, variant, samples=args.samples, points=args.points, seed=args.seed, repeats=args.repeats
                )
                rank = answer_rank(variant, case.span) if case.needle else None
                rows[method][name].append(
                    {
                        "case": case.name,
                        "rank": rank,
                        "nc": faith.nc_log_ratio,
                        "ns": faith.ns_log_ratio,
                        "area": faith.area,
                        "random_area": faith.random_area,
                    }
                )
                print(f"  {case.name:18s} {method:18s} {name:16s} rank {rank}  {faith.summary()}", flush=True)
    return rows


def summary(rows: dict) -> list[str]:
    lines = [
        "| method | heatmap | answer token rank: median (mean) | in top 3 | Soft-NC log ratio | "
        "Soft-NS log ratio | MoRF/LeRF area (random) |",
        "|---|---|---|---|---|---|---|",
    ]
    for method, definitions in rows.items():
        for name, found in definitions.items():
            ranks = [r["rank"] for r in found if r["rank"] is not None]
            lines.append(
                f"| {method} | {name} | {statistics.median(ranks):.0f} ({statistics.mean(ranks):.1f}) | "
                f"{sum(r <= 3 for r in ranks)}/{len(ranks)} | {statistics.mean(r['nc'] for r in found):+.3f} | "
                f"{statistics.mean(r['ns'] for r in found):+.3f} | {statistics.mean(r['area'] for r in found):.3f} "
                f"({statistics.mean(r['random_area'] for r in found):.3f}) |"
            )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--needles", type=int, default=12)
    parser.add_argument("--samples", type=int, default=4, help="soft masks per placement")
    parser.add_argument("--points", type=int, default=5, help="points of the MoRF/LeRF curves")
    parser.add_argument("--repeats", type=int, default=2, help="random placements")
    parser.add_argument("--methods", default="attnlrp,input_x_gradient")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "AGGREGATE.json")
    args = parser.parse_args()
    started = time.perf_counter()
    loaded = load_model()
    cases, tried = build_cases(loaded, args.needles, [], args.seed)
    print(f"{len(cases)} needle prompts (kept of {tried})", flush=True)
    rows = measure(loaded, cases, args.methods.split(","), args)
    args.out.write_text(json.dumps(rows, indent=1), "utf-8")
    print("\n".join(summary(rows)))
    print(f"{time.perf_counter() - started:.0f} s; rows in {args.out}")


if __name__ == "__main__":
    main()
