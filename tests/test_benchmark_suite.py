"""The benchmark suite resumes: an interrupted run keeps its finished rows and computes only the rest,
and the report is written from the stored rows (on a tiny saved model, with cheap methods)."""

from __future__ import annotations

import argparse
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "benchmarks"))

import run  # noqa: E402
from needles import KINDS, needles  # noqa: E402
from store import RowStore  # noqa: E402

from salience.attribution import load_model  # noqa: E402

SETTINGS = dict(samples=2, points=2, repeats=1, seed=0)


@pytest.fixture(scope="module")
def loaded(tiny_model_dir):
    return load_model(str(tiny_model_dir))


@pytest.fixture
def cases(loaded):
    texts = {"a.prompt": "---\nmax_new_tokens: 2\n---\nThe door code is 7733.", "b.prompt": "Hello there,"}
    return [run.make_case(loaded, name, text) for name, text in texts.items()]


METHODS = {name: run.Variant(name, None) for name in ("saliency", "attention")}


class Interrupted(Exception):
    pass


def test_an_interrupted_run_resumes_without_recomputing_finished_rows(loaded, cases, tmp_path, monkeypatch):
    store = RowStore(tmp_path / "results")

    def stop_after_two(row: dict, stored: bool) -> None:
        if len(list(store.root.rglob("*.json"))) == 2:
            raise Interrupted  # as a killed run: two rows on disk, two to go

    with pytest.raises(Interrupted):
        run.run_rows(loaded, cases, lambda case: METHODS, store, SETTINGS, stop_after_two)
    finished = {p: p.read_bytes() for p in store.root.rglob("*.json")}
    assert len(finished) == 2 and not list(store.root.rglob("*.partial"))

    computed, original = [], run.compute_row

    def counted(loaded, case, name, *rest):
        computed.append(f"{case.name}/{name}")
        return original(loaded, case, name, *rest)

    monkeypatch.setattr(run, "compute_row", counted)
    seen = []
    rows = run.run_rows(loaded, cases, lambda case: METHODS, store, SETTINGS, lambda row, stored: seen.append(stored))
    assert computed == ["b.prompt/saliency", "b.prompt/attention"]
    assert seen == [True, True, False, False] and len(rows) == 4
    assert all(p.read_bytes() == data for p, data in finished.items())  # finished rows untouched

    computed.clear()
    run.run_rows(loaded, cases, lambda case: METHODS, store, dict(SETTINGS, samples=3), lambda row, stored: None)
    assert len(computed) == 4  # other metric settings: every row is stale and computed again


def test_with_commit_each_prompts_rows_are_committed_when_they_are_all_there(loaded, cases, tmp_path):
    git = ["git", "-C", str(tmp_path)]
    for command in (["init", "-q"], ["config", "user.email", "t@example.com"], ["config", "user.name", "t"]):
        subprocess.run([*git, *command], check=True)
    store = RowStore(tmp_path / "results")
    run.run_rows(loaded, cases, lambda case: METHODS, store, SETTINGS, on_case=run.committer(store))
    log = subprocess.run([*git, "log", "--format=%s"], check=True, capture_output=True, text=True).stdout.split("\n")
    assert log[:2] == ["benchmarks: rows of b.prompt", "benchmarks: rows of a.prompt"]
    tracked = subprocess.run([*git, "ls-files"], check=True, capture_output=True, text=True).stdout.split()
    assert sorted(tracked) == sorted(str(p.relative_to(tmp_path)) for p in store.root.rglob("*.json"))


def test_the_report_is_written_from_stored_rows(loaded, cases, tmp_path):
    store = RowStore(tmp_path / "results")
    methods = {**METHODS, "saliency" + run.NO_SINK: run.Variant("saliency", None, sink=False)}
    rows = run.run_rows(loaded, cases[:1], lambda case: methods, store, SETTINGS)
    assert rows[0]["first_rank"] >= 1 and 0 <= rows[0]["first_share"] <= 1 and rows[0]["hidden_share"] > 0
    assert rows[2]["hidden_share"] == 0  # without the sink token every token is the file's
    args = argparse.Namespace(
        quick=False, settings=SETTINGS, params={}, seed=0, out=tmp_path / "docs",
        long_params=run.LONG_PARAMS, long_skipped=run.LONG_SKIPPED,
    )  # fmt: skip
    run.write_report(args, rows, {}, cases, 0, expected=len(cases) * len(methods))
    text = (tmp_path / "docs" / "BENCHMARKS.md").read_text(encoding="utf-8")
    assert f"Partial: 3 of {2 * len(methods)} rows" in text and "| `saliency` |" in text
    assert f"`{run.SIG}` is not run on prompts over {run.LONG_TOKENS} tokens: one forward-mode pass" in text
    assert "fixed-rate NC" in text and (tmp_path / "docs" / "needle.png").exists()


def test_a_long_prompt_runs_the_batch_methods_at_their_long_settings_or_not_at_all(cases):
    short = cases[0]
    long = replace(short, ids=short.ids * (run.LONG_TOKENS // len(short.ids) + 1))
    assert run.SIG in run.case_variants(short, run.BATCH_PARAMS, run.LONG_PARAMS, run.LONG_SKIPPED)
    found = run.case_variants(long, run.BATCH_PARAMS, run.LONG_PARAMS, run.LONG_SKIPPED)
    assert run.SIG not in found and found["reagent"].params == run.LONG_PARAMS["reagent"]
    assert "attnlrp" + run.NO_SINK in found and "attnlrp" + run.NO_SINK in run.case_variants(long, {}, None)
    assert run.SIG in run.case_variants(long, {}, None)  # --quick: no long settings, nothing left out


def test_needle_prompts_mark_the_value_the_answer_copies():
    stream = needles(seed=3)
    made = [next(stream) for _ in range(2 * len(KINDS))]
    assert {m.name.rsplit("-", 1)[1] for m in made} == set(KINDS)
    for found in made:  # the value sits in the asked sentence, which the question names
        assert found.text[found.span[0] : found.span[1]] == found.answer
        asked = found.text.splitlines()[-1].removeprefix("Answer: ")
        assert found.text[: found.span[0]].endswith(asked + " ")
    again = needles(seed=3)
    assert [next(again).text for _ in made] == [m.text for m in made]  # seeded: a resumed run sees the same
