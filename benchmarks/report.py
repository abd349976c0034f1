"""docs/BENCHMARKS.md and its plots from one run of benchmarks/run.py."""

from __future__ import annotations

import platform
import statistics
from pathlib import Path

import torch

from salience.attribution import COMPLETENESS_WARNING

INTERACTIVE_SECONDS = 1.0
NEAR = 1.5


def summarise(reports: dict) -> dict[str, dict]:
    """Per method: medians of time, means of the faithfulness figures, win rates against random."""
    table = {}
    for name, report in reports.items():
        rows = report.rows
        hits = [r.hit for r in rows if r.hit is not None]
        table[name] = {
            "seconds": statistics.median(r.seconds for r in rows),
            "per_forward": statistics.median(r.per_forward for r in rows),
            "nc": statistics.mean(r.faith.nc_log_ratio for r in rows),
            "ns": statistics.mean(r.faith.ns_log_ratio for r in rows),
            "nc_wins": sum(r.faith.nc_log_ratio > 0 for r in rows) / len(rows),
            "ns_wins": sum(r.faith.ns_log_ratio < 0 for r in rows) / len(rows),
            "area": statistics.mean(r.faith.area for r in rows),
            "random_area": statistics.mean(r.faith.random_area for r in rows),
            "area_wins": sum(r.faith.area > r.faith.random_area for r in rows) / len(rows),
            "needle": sum(hits) / len(hits) if hits else None,
            "kept": statistics.mean(r.faith.kept_fraction for r in rows),
            "reference": report.reference,
            "gap": statistics.median(gaps) if (gaps := [r.gap for r in rows if r.gap is not None]) else None,
        }
    return table


def interactive_choice(table: dict[str, dict]) -> tuple[str, list[str], list[str]]:
    """The most faithful method among those fast enough (median attribution <= 1 s) that find the needle.

    A method must put the needle in the top 5 on at least half the needle prompts to count as faithful.
    When no method is both fast enough and faithful, the most faithful of those within `NEAR` times the
    fastest faithful one's time is chosen (timings on a shared machine move that much between runs).
    Returns (choice, fast enough, faithful).
    """
    faithful = [n for n, s in table.items() if (s["needle"] or 0.0) >= 0.5]
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


def plots(reports: dict, table: dict[str, dict], out: Path) -> list[str]:
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
        rows = reports[name].rows
        morf = torch.tensor([r.faith.morf for r in rows]).mean(0)
        lerf = torch.tensor([r.faith.lerf for r in rows]).mean(0)
        x = torch.linspace(0, 1, len(morf))
        (line,) = ax.plot(x, morf, label=f"{name} MoRF")
        ax.plot(x, lerf, ls="--", color=line.get_color(), label=f"{name} LeRF")
    ax.set_xlabel("fraction of source tokens removed")
    ax.set_ylabel("explained quantity (1 = full input, 0 = empty)")
    ax.legend(fontsize=6, ncol=2)
    fig.tight_layout()
    fig.savefig(out / "morf_lerf.png", dpi=120)

    fig, ax = plt.subplots(figsize=(6, 3))
    rates = [table[n]["needle"] or 0.0 for n in names]
    ax.bar(names, rates)
    ax.set_ylim(0, 1)
    ax.set_ylabel("needle in top-5")
    ax.tick_params(axis="x", labelsize=7)
    fig.tight_layout()
    fig.savefig(out / "needle.png", dpi=120)
    plt.close("all")
    return ["time_vs_faithfulness.png", "morf_lerf.png", "needle.png"]


def write_report(args, reports: dict, cases: list, tried: int, seconds: float) -> None:
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    table = summarise(reports)
    images = plots(reports, table, out)
    choice, fast, faithful = interactive_choice(table)
    needles = sum(1 for c in cases if c.needle)
    lines = [
        "# Benchmarks",
        "",
        f"Written by `benchmarks/run.py{' --quick' if args.quick else ''}` in {seconds / 60:.1f} min on "
        f"{platform.machine()} with {torch.get_num_threads()} torch threads, embedded SmolLM2-135M-Instruct (fp32, "
        f"{'cuda' if torch.cuda.is_available() else 'cpu'}). {len(cases)} prompts: {len(cases) - needles} example(s) "
        f"and {needles} needle prompts (kept of {tried} generated with seed {args.seed}, only those the model "
        "answers with the right code). Faithfulness: "
        f"{args.samples} mask samples, {args.points} removal steps, {args.repeats} random placements. "
        f"Parameters other than the defaults: {_parameters(args.params)}.",
        "",
        "| method | time (median) | × one forward | reference: r / max Δ | Soft-NC log ratio (wins) | "
        "Soft-NS log ratio (wins) | MoRF/LeRF area vs random (wins) | needle in top-5 |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, s in table.items():
        ref = s["reference"]
        reference = f"{ref[0]}: {ref[1]:.4f} / {ref[2]:.1e}" if ref else "n/a"
        needle = f"{100 * s['needle']:.0f}%" if s["needle"] is not None else "n/a"
        lines.append(
            f"| `{name}` | {s['seconds']:.2f} s | {s['per_forward']:.1f} | {reference} | "
            f"{s['nc']:+.2f} ({100 * s['nc_wins']:.0f}%) | {s['ns']:+.2f} ({100 * s['ns_wins']:.0f}%) | "
            f"{s['area']:.3f} vs {s['random_area']:.3f} ({100 * s['area_wins']:.0f}%) | {needle} |"
        )
    lines += [
        "",
        "Soft-NC / Soft-NS: Hellinger distance of the next-token distributions when source embeddings are "
        "dropped / kept with probability equal to the normalised |score|; log ratio to the same scores placed "
        "on random tokens (NC above 0 and NS below 0 beat random). MoRF/LeRF: mean gap between the "
        "least- and most-relevant-first removal curves, normalised from the full (1) to the empty (0) input. "
        "Wins: the share of prompts where the method beats random. Reference: Pearson r and max |difference| of "
        "the [target × source] matrix and Captum's (Inseq's for SIG, per token and unnormalised) on "
        "examples/apples.prompt with its 4-token continuation, the same parameters.",
        "",
        "## Against random",
        "",
        *verdicts(table),
        "",
        "## Interactive default",
        "",
        f"Fast enough (median attribution ≤ {INTERACTIVE_SECONDS:.0f} s, generation excluded): "
        f"{_names(fast)}. Faithful (needle in the top 5 on at least half the needle prompts): {_names(faithful)}. "
        "The choice is the most faithful method that is both (NC − NS log ratios + area gain + needle rate), "
        f"else the most faithful of those within {NEAR}× the fastest faithful one's time: **`{choice}`** "
        f"({table[choice]['seconds']:.2f} s median).",
        "",
        *[f"![{name}]({name})" for name in images],
        "",
    ]
    (out / "BENCHMARKS.md").write_text("\n".join(lines), encoding="utf-8")


def _parameters(params: dict[str, dict]) -> str:
    described = [f"`{name}` {', '.join(f'{k} {v}' for k, v in p.items())}" for name, p in params.items()]
    return "; ".join(described) or "none"
