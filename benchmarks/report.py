"""docs/BENCHMARKS.md and its plots from one run of benchmarks/run.py."""

from __future__ import annotations

import statistics
from pathlib import Path

import torch

from salience.attribution import COMPLETENESS_WARNING, DEFAULT_METHOD
from salience.evaluation.faithfulness import FIXED_RATE

NO_SINK = " (no sink token)"  # the suite's name suffix for a method run without the sink token (run.py)
LONG_TOKENS = 512  # a prompt over this many tokens runs the batch methods at their long settings (run.py)
FIRST_POSITION = Path(__file__).parent / "results" / "first_position.md"
INTERACTIVE_SECONDS = 1.0
NEAR = 1.5


def summarise(rows: list[dict], references: dict[str, dict]) -> dict[str, dict]:
    """Per method: medians of time and ranks, means of the faithfulness figures, win rates against random."""
    by_method: dict[str, list[dict]] = {}
    for row in rows:
        by_method.setdefault(row["method"], []).append(row)
    table = {}
    for name, found in by_method.items():
        faith = [r["faith"] for r in found]
        needles = [r for r in found if r["needle"]]
        answers = [r["answer_rank"] for r in needles if r["answer_rank"] is not None]
        table[name] = {
            "rows": len(found),
            "seconds": statistics.median(r["seconds"] for r in found),
            "per_forward": statistics.median(r["per_forward"] for r in found),
            **{short: statistics.mean(f[key] for f in faith) for short, key in FAITH_MEANS.items()},
            "nc_wins": _rate(f["nc_log_ratio"] > 0 for f in faith),
            "ns_wins": _rate(f["ns_log_ratio"] < 0 for f in faith),
            "fixed_nc_wins": _rate(f["fixed_nc_log_ratio"] > 0 for f in faith),
            "fixed_ns_wins": _rate(f["fixed_ns_log_ratio"] < 0 for f in faith),
            "area_wins": _rate(f["area"] > f["random_area"] for f in faith),
            "needle": _rate(a <= 5 for a in answers) if needles else None,
            "answer_rank": statistics.median(answers) if answers else None,
            "first_share": statistics.median(r["first_share"] for r in needles) if needles else None,
            "first_top3": _rate(r["first_rank"] <= 3 for r in needles) if needles else None,
            "reference": references.get(name),
            "gap": statistics.median(gaps) if (gaps := [r["gap"] for r in found if r["gap"] is not None]) else None,
            "morf": torch.tensor([f["morf"] for f in faith]).mean(0).tolist(),
            "lerf": torch.tensor([f["lerf"] for f in faith]).mean(0).tolist(),
        }
    return table


FAITH_MEANS = {
    "nc": "nc_log_ratio", "ns": "ns_log_ratio", "fixed_nc": "fixed_nc_log_ratio", "fixed_ns": "fixed_ns_log_ratio",
    "area": "area", "random_area": "random_area", "kept": "kept_fraction",
}  # fmt: skip
"""The table's name for each mean of a row's faithfulness figures."""


def _rate(flags) -> float:
    flags = list(flags)
    return sum(flags) / len(flags) if flags else 0.0


def interactive_choice(table: dict[str, dict]) -> tuple[str, list[str], list[str]]:
    """The most faithful method among those fast enough (median attribution <= 1 s) that find the needle.

    A method must put the needle in the top 5 on at least half the needle prompts to count as faithful.
    When no method is both fast enough and faithful, the most faithful of those within `NEAR` times the
    fastest faithful one's time is chosen (timings on a shared machine move that much between runs).
    Returns (choice, fast enough, faithful).
    """
    faithful = [n for n, s in table.items() if (s["needle"] or 0.0) >= 0.5]  # answer-bearing token in the top 5
    fast = [n for n, s in table.items() if s["seconds"] <= INTERACTIVE_SECONDS]

    def merit(name: str) -> float:
        s = table[name]
        return s["nc"] - s["ns"] + (s["area"] - s["random_area"]) + (s["needle"] or 0.0)

    both = [n for n in fast if n in faithful]
    if both:
        return max(both, key=merit), fast, faithful
    pool = faithful or list(table)
    fastest = min(table[n]["seconds"] for n in pool)
    return max((n for n in pool if table[n]["seconds"] <= NEAR * fastest), key=merit), fast, faithful


def verdicts(table: dict[str, dict]) -> list[str]:
    """Where a method does not beat random, say so (the doc must)."""
    lines = []
    for name, s in table.items():
        soft = s["nc"] > 0 and s["ns"] < 0
        curve = s["area"] > s["random_area"]
        if soft and curve:
            lines.append(f"- `{name}` beats random on both metrics.")
            continue
        missed = [m for m, ok in (("Soft-NS/NC", soft), ("MoRF/LeRF", curve)) if not ok]
        lines.append(
            f"- `{name}` does **not** beat random on {' and '.join(missed)} "
            f"(NC log ratio {s['nc']:+.2f}, NS log ratio {s['ns']:+.2f}, area {s['area']:.3f} vs random "
            f"{s['random_area']:.3f}). Why: {_reason(s)}"
        )
    return lines


def _reason(s: dict) -> str:
    reasons = []
    if s["gap"] is not None and s["gap"] > COMPLETENESS_WARNING:
        reasons.append(
            f"its path integrals are far from converged at these steps (median completeness gap "
            f"{s['gap']:.1f}: a path's scores miss f(x) - f(baseline) by that much); SmolLM2's "
            "output is rough along straight paths from the baseline (f moves by several nats "
            "within 0.005 of alpha on examples/apples.prompt), so few quadrature nodes sample noise"
        )
    if s["ns"] >= 0:
        reasons.append(
            f"its scores are peaked, so a sufficiency mask keeps on average {100 * s['kept']:.0f}% of the "
            "tokens for its placement and for the random ones alike; both outputs are then about as far "
            "from the full input's as they can be, and Soft-NS cannot tell them apart"
        )
    if s["nc"] <= 0:
        reasons.append(
            "dropping its top tokens moves the output less than dropping the same mass on random tokens: "
            "its largest scores sit on tokens the output does not depend on"
        )
    if s["area"] <= s["random_area"]:
        reasons.append(
            "removing its most relevant tokens first does not lower the explained log-probability "
            "faster than removing its least relevant first"
        )
    return "; ".join(reasons) + "."


def _names(names: list[str]) -> str:
    return ", ".join(f"`{n}`" for n in names) or "none"


def plots(table: dict[str, dict], out: Path) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(table)
    fig, ax = plt.subplots(figsize=(6, 4))
    for name in names:
        ax.scatter(table[name]["per_forward"], table[name]["nc"], s=40)
        ax.annotate(name, (table[name]["per_forward"], table[name]["nc"]), fontsize=8)
    ax.set_xscale("log")
    ax.axhline(0, color="grey", lw=0.8)
    ax.set_xlabel("attribution time / one forward pass (median)")
    ax.set_ylabel("Soft-NC log ratio to random (mean)")
    fig.tight_layout()
    fig.savefig(out / "time_vs_faithfulness.png", dpi=120)

    fig, ax = plt.subplots(figsize=(6, 4))
    for name in names:
        morf, lerf = table[name]["morf"], table[name]["lerf"]
        x = torch.linspace(0, 1, len(morf))
        (line,) = ax.plot(x, morf, label=f"{name} MoRF")
        ax.plot(x, lerf, ls="--", color=line.get_color(), label=f"{name} LeRF")
    ax.set_xlabel("fraction of source tokens removed")
    ax.set_ylabel("explained quantity (1 = full input, 0 = empty)")
    ax.legend(fontsize=6, ncol=2)
    fig.tight_layout()
    fig.savefig(out / "morf_lerf.png", dpi=120)

    fig, ax = plt.subplots(figsize=(7, 3.5))
    x = torch.arange(len(names)).float()
    ax.bar(x - 0.2, [table[n]["needle"] or 0.0 for n in names], 0.4, label="answer-bearing token in the top 5")
    ax.bar(x + 0.2, [table[n]["first_top3"] or 0.0 for n in names], 0.4, label="file's first token in the top 3")
    ax.set_xticks(x.tolist(), names, rotation=35, ha="right")
    ax.set_ylim(0, 1)
    ax.set_ylabel("share of needle prompts")
    ax.legend(fontsize=7)
    ax.tick_params(axis="x", labelsize=7)
    fig.tight_layout()
    fig.savefig(out / "needle.png", dpi=120)
    plt.close("all")
    return ["time_vs_faithfulness.png", "morf_lerf.png", "needle.png"]


def write_report(args, rows: list[dict], references: dict, cases: list, tried: int, expected: int) -> None:
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    table = summarise(rows, references)
    images = plots(table, out) if table else []
    needles = sum(1 for c in cases if c.needle)
    lines = [
        "# Benchmarks",
        "",
        *_provenance(args, rows, cases, tried, expected, needles),
        "",
        "| method | time (median) | × one forward | reference: r / max Δ | Soft-NC log ratio (wins) | "
        "Soft-NS log ratio (wins) | fixed-rate NC (wins) | fixed-rate NS (wins) | MoRF/LeRF area vs random (wins) | "
        "answer-bearing rank (median) · in top 5 | first token share · in top 3 |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
        *[_table_row(name, s) for name, s in table.items()],
        "",
        "Soft-NC / Soft-NS: Hellinger distance of the next-token distributions when source embeddings are "
        "dropped / kept with probability equal to the normalised |score|; log ratio to the same scores placed "
        f"on random tokens (NC above 0 and NS below 0 beat random). Fixed-rate: each mask drops (NC) or keeps (NS) "
        f"exactly {100 * FIXED_RATE:.0f}% of the source tokens, drawn in proportion to the scores, for the method "
        "and its random placements alike (Bernoulli masks keep as many tokens as the scores' mass says, which "
        "favours flat scores). MoRF/LeRF: mean gap between the least- and most-relevant-first removal curves, "
        "normalised from the full (1) to the empty (0) input. Wins: the share of prompts where the method beats "
        "random. Reference: Pearson r and max |difference| of the [target × source] matrix and Captum's (Inseq's "
        "for SIG, per token and unnormalised) on examples/apples.prompt with its 4-token continuation, the same "
        "parameters. Needle columns, on needle prompts only, ranked among the file's tokens as the views rank them "
        "with `granularity: token` (by default they show words, where the asked value is one part): the best rank "
        "of a token of the asked value (the answer copies it), and the file's first token.",
        "",
    ]
    lines += sink_section(table) + first_position_section()
    if table:
        choice, fast, faithful = interactive_choice({n: s for n, s in table.items() if NO_SINK not in n})
        lines += [
            "## Against random",
            "",
            *verdicts(table),
            "",
            "## Interactive default",
            "",
            f"Fast enough (median attribution ≤ {INTERACTIVE_SECONDS:.0f} s, generation excluded): "
            f"{_names(fast)}. Faithful (the answer-bearing token in the top 5 on at least half the needle prompts): "
            f"{_names(faithful)}. The choice is the most faithful method that is both (NC − NS log ratios + area "
            f"gain + needle rate), else the most faithful of those within {NEAR}× the fastest faithful one's time: "
            f"**`{choice}`** ({table[choice]['seconds']:.2f} s median).",
            "",
        ]
    lines += [*[f"![{name}]({name})" for name in images], ""]
    (out / "BENCHMARKS.md").write_text("\n".join(lines), encoding="utf-8")


def first_position_section() -> list[str]:
    """The measurement behind the sink token (benchmarks/first_position.py), where it has been run."""
    if not FIRST_POSITION.exists():
        return []
    return [
        "## Where the first position's relevance comes from",
        "",
        "Needle prompts and the plain examples explained as written, with one sink token the model reads first "
        "(not drawn in the file: the end-of-text token, or the tokenizer's BOS), and in the chat template; then "
        "random tiny models of every family. Share: of all |score|, as the views count it; rank: among the file's "
        "parts. Every condition explains the answer found on the prompt as written.",
        "",
        FIRST_POSITION.read_text(encoding="utf-8").strip(),
        "",
    ]


def sink_section(table: dict[str, dict]) -> list[str]:
    """The default method on the needle prompts with the sink token the engine puts first, and without."""
    after, before = table.get(DEFAULT_METHOD), table.get(DEFAULT_METHOD + NO_SINK)
    if not after or not before or after["needle"] is None or before["needle"] is None:
        return []

    def cells(s: dict) -> str:
        return (
            f"{100 * s['first_top3']:.0f}% | {100 * s['first_share']:.1f}% | {s['answer_rank']:g} | "
            f"{100 * s['needle']:.0f}%"
        )

    return [
        "## The first position (attention sink)",
        "",
        f"`{DEFAULT_METHOD}` on the needle prompts, explaining the same answer, before and after a plain prompt "
        "starts with the tokenizer's BOS as a sink token (salience/attribution/tokens.py; measured by "
        "benchmarks/first_position.py below). The first file token's figures are ranked among the file's tokens "
        "(the views' `granularity: token`); the sink token itself is not in the file and the views say what it "
        "holds.",
        "",
        "| input | first token in top 3 | first token share (median) | answer-bearing rank (median) | "
        "answer-bearing token in top 5 |",
        "|---|---|---|---|---|",
        f"| as written (before) | {cells(before)} |",
        f"| sink token first (after) | {cells(after)} |",
        "",
    ]


def _provenance(args, rows: list[dict], cases: list, tried: int, expected: int, needles: int) -> list[str]:
    """How the rows were made: command, sittings, compute time, machine, settings and parameters."""
    hours = sum(r["row_seconds"] for r in rows) / 3600
    sittings = sorted({r["sitting"] for r in rows})
    machines = sorted({r["machine"] for r in rows})
    settings = args.settings
    partial = (
        f"**Partial: {len(rows)} of {expected} rows are stored so far; run `benchmarks/run.py` again to go on.** "
        if len(rows) < expected
        else ""
    )
    return [
        f"{partial}Written by `benchmarks/run.py{' --quick' if args.quick else ''}` from {len(rows)} stored rows "
        f"(benchmarks/results/), computed in {len(sittings)} sitting(s) "
        f"({', '.join(s[:16] for s in sittings[:1])}{' … ' + sittings[-1][:16] if len(sittings) > 1 else ''} UTC) "
        f"taking {hours:.1f} h of attribution and metrics in all, on {'; '.join(machines) or 'no machine yet'}, "
        f"embedded SmolLM2-135M-Instruct (fp32). {len(cases)} prompts: {len(cases) - needles} example(s) and "
        f"{needles} needle prompts (benchmarks/needles.py, kept of {tried} generated with seed {args.seed}: only "
        "those the model answers with the asked value). Faithfulness: "
        f"{settings['samples']} mask samples, {settings['points']} removal steps, {settings['repeats']} random "
        f"placements. Parameters other than the defaults: {_parameters(args.params)}{_long(args)}.",
        *(["", "Settings per method, and why:", ""] if getattr(args, "reasons", None) else []),
        *[f"- `{names}`: {why}." for names, why in getattr(args, "reasons", {}).items()],
    ]


def _table_row(name: str, s: dict) -> str:
    ref = s["reference"]
    reference = f"{ref['reference']}: {ref['pearson']:.4f} / {ref['max_difference']:.1e}" if ref else "n/a"
    needle = (
        f"{s['answer_rank']:g} · {100 * s['needle']:.0f}% | {100 * s['first_share']:.1f}% · "
        f"{100 * s['first_top3']:.0f}%"
        if s["needle"] is not None
        else "n/a | n/a"
    )
    return (
        f"| `{name}` | {s['seconds']:.2f} s | {s['per_forward']:.1f} | {reference} | "
        f"{s['nc']:+.2f} ({100 * s['nc_wins']:.0f}%) | {s['ns']:+.2f} ({100 * s['ns_wins']:.0f}%) | "
        f"{s['fixed_nc']:+.2f} ({100 * s['fixed_nc_wins']:.0f}%) | "
        f"{s['fixed_ns']:+.2f} ({100 * s['fixed_ns_wins']:.0f}%) | "
        f"{s['area']:.3f} vs {s['random_area']:.3f} ({100 * s['area_wins']:.0f}%) | {needle} |"
    )


def _long(args) -> str:
    long, skipped = getattr(args, "long_params", None), getattr(args, "long_skipped", None) or {}
    said = f"; on prompts over {LONG_TOKENS} tokens, {_parameters(long)}" if long else ""
    left_out = (f"; `{name}` is not run on prompts over {LONG_TOKENS} tokens: {why}" for name, why in skipped.items())
    return said + "".join(left_out)


def _parameters(params: dict[str, dict]) -> str:
    described = [f"`{name}` {', '.join(f'{k} {v}' for k, v in p.items())}" for name, p in params.items() if p]
    return "; ".join(described) or "none"
