"""`salience check`, `salience diff` and `attribute --by section` as a user (or a CI step) runs them."""

from __future__ import annotations

import json
import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from salience import cli

EXAMPLES = Path(__file__).parents[2] / "examples"
SECTIONED = "## Facts\nThe red door code is 7733. 🚪 日本\n\n## Ask\nWhat is the red door code?"


def expecting(block: str) -> str:
    return f"---\nmax_new_tokens: 2\nexpect:\n{block}---\n{SECTIONED}"


def run(capsys, *args):
    code = cli.main([*map(str, args)])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("SALIENCE_CACHE", str(tmp_path / "cache"))


def test_check_passes_fails_writes_junit_and_reuses_results(tiny_model_dir, tmp_path, capsys, cache):
    good = tmp_path / "good.prompt.md"
    good.write_text(expecting("  answer: {not_contains: never-said}\n  sections:\n    Facts: {min_share: 0.0}\n"))
    bad = tmp_path / "bad.prompt.md"
    bad.write_text(expecting("  sections:\n    facts: {min_share: 0.99}\n    Ask: {max_share: 1.0}\n"))
    (tmp_path / "plain.prompt").write_text("No expectations here.")
    junit = tmp_path / "out" / "junit.xml"
    model = ("--model", tiny_model_dir, "--method", "saliency")
    code, out, _ = run(capsys, "check", good, *model)
    assert code == 0 and "2 of 2 expectations hold · passed" in " ".join(out.split())
    code, out, _ = run(capsys, "check", tmp_path, *model, "--junit", junit)
    flat = " ".join(out.split())
    assert code == 1 and "FAIL section 'facts': share ≥ 99.0%" in flat and "skipped: no expect: block" in flat
    assert "3 files: 2 checked (1 from stored results)" in flat  # good.prompt.md was not explained again
    suite = ET.parse(junit).getroot()
    assert (suite.get("tests"), suite.get("failures"), suite.get("skipped")) == ("5", "1", "1")
    (failure,) = suite.iter("failure")
    assert failure.get("message").startswith("it holds ")


def test_check_reports_a_bad_expect_block_clearly(tiny_model_dir, tmp_path, capsys, cache):
    missing = tmp_path / "missing.prompt.md"
    missing.write_text(expecting("  sections:\n    Appendix: {min_share: 0.1}\n"))
    unknown = tmp_path / "unknown.prompt.md"
    unknown.write_text(expecting("  answer: {has: '7733'}\n"))
    code, out, _ = run(capsys, "check", missing, unknown, "--model", tiny_model_dir)
    flat = " ".join(out.split())
    assert code == 1 and "expect: no section 'Appendix' in this file (its sections: 'Facts', 'Ask')" in flat
    assert "expect.answer.has: Extra inputs are not permitted" in flat and "2 errors" in flat


def test_attribute_by_section_and_json_sections(tiny_model_dir, tmp_path, capsys, cache):
    prompt = tmp_path / "s.prompt.md"
    prompt.write_text(SECTIONED, encoding="utf-8")
    code, out, _ = run(capsys, "attribute", prompt, "--model", tiny_model_dir, "--by", "section")
    assert code == 0 and "sections: share of |relevance|" in out and "Facts" in out and "Ask" in out
    code, out, _ = run(capsys, "attribute", prompt, "--model", tiny_model_dir, "--json")
    data = json.loads(out)
    shares = [s["share"] for s in data["sections"]["sections"]] + [data["sections"]["hidden"]]
    assert [s["name"] for s in data["sections"]["sections"]] == ["Facts", "Ask"]
    assert sum(shares) == pytest.approx(1.0, abs=1e-6)


def test_diff_two_files_and_a_git_revision(tiny_model_dir, tmp_path, capsys, cache, monkeypatch):
    old, new = tmp_path / "old.prompt", tmp_path / "new.prompt"
    old.write_text("The red door code is 7733. The blue door code is 4812. Red:", encoding="utf-8")
    new.write_text("The red door code is 7733. The door code is 4812. Extra 🚪 text. Red:", encoding="utf-8")
    model = ("--model", tiny_model_dir, "--max-new-tokens", "2")
    code, out, _ = run(capsys, "diff", old, new, *model, "--html", tmp_path / "d.html")
    assert code == 0 and "completion" in out and "the 10 words whose relevance changed most" in out
    assert "<del>blue</del>" in (tmp_path / "d.html").read_text(encoding="utf-8")
    code, out, _ = run(capsys, "diff", old, new, *model, "--json")
    data = json.loads(out)
    assert {"inserted", "deleted", "kept"} == {w["status"] for w in data["words"]}
    assert next(w for w in data["words"] if w["text"] == "blue")["status"] == "deleted"
    if shutil.which("git") is None:
        return
    monkeypatch.chdir(tmp_path)
    code, _, err = run(capsys, "diff", "new.prompt", *model)
    assert code == 1 and "not in a git repository" in err
    git = ["git", "-C", str(tmp_path), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "new.prompt"], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "v1"], check=True)
    new.write_text(new.read_text(encoding="utf-8").replace("Extra", "More"), encoding="utf-8")
    code, out, _ = run(capsys, "diff", "new.prompt", *model, "--json")
    data = json.loads(out)
    assert data["old"] == "HEAD:new.prompt" and data["new"] == "new.prompt"
    assert [w["text"] for w in data["words"] if w["status"] == "inserted"] == ["More"]


@pytest.mark.embedded
def test_the_check_example_passes_on_the_embedded_model(tmp_path, capsys, cache):
    code, out, _ = run(capsys, "check", EXAMPLES / "whole-prompt" / "check.prompt.md", "--junit", tmp_path / "j.xml")
    assert code == 0 and "answer contains '7733'" in out, out
