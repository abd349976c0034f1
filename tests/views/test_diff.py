"""Two versions of a prompt compared: words aligned through insertions and deletions, sections by name, and
versions read from git revisions."""

from __future__ import annotations

import shutil
import subprocess

import pytest
from rich.console import Console
from test_sections import word_result

from salience.attribution import SalienceError
from salience.revisions import is_revision, read_version, sides
from salience.views.comparison import compare, comparison_view
from salience.views.html import diff_page
from salience.views.reading import Reading
from salience.views.section_shares import sections_of
from salience.views.terminal import diff_heatmap, diff_report

OLD = "## Facts\nThe red door is 7733. The 🚪 blue door is 4812.\n\n## Ask\nRed door?"
NEW = "## Facts\nThe red door code is 7733. The 🚪 door is 4812.\n\n## Notes\n日本 extra.\n\n## Ask\nRed door?"


def comparison(old_scores=None, new_scores=None, new_text=NEW):
    old = Reading.of(word_result(OLD, old_scores or {"7733.": 2.0}), OLD)
    new = Reading.of(word_result(new_text, new_scores or {"7733.": 1.0, "code": 1.0}), new_text)
    return compare(old, new, sections_of(old), sections_of(new)), new


def test_words_align_through_insertions_and_deletions():
    found, _ = comparison()
    statuses = [(w.text, w.status) for w in found.words]
    assert ("code", "inserted") in statuses and ("blue", "deleted") in statuses
    assert ("日本", "inserted") in statuses and ("🚪", "kept") in statuses
    kept = next(w for w in found.words if w.text == "7733.")
    assert kept.status == "kept" and kept.old > kept.new > 0
    assert kept.describe().startswith("was +") and ", now +" in kept.describe()
    assert next(w for w in found.words if w.text == "blue").describe().startswith("deleted, was +")
    assert found.largest(1)[0].text == "7733."
    assert not found.answer_changed and found.answer_line() == "completion unchanged: ' x'"


def test_deleted_words_are_shown_where_they_were():
    found, new = comparison()
    anchors = found.deleted_before()
    door = NEW.index("door is 4812")
    assert anchors[door] == ["blue"]
    plain = diff_heatmap(found, new, 0, None).plain
    assert "🚪 [-blue-] door is 4812" in plain


def test_sections_compare_by_name():
    found, _ = comparison()
    by_name = {s.name: s for s in found.sections}
    assert by_name["Notes"].old is None and by_name["Notes"].new > 0
    assert by_name["Facts"].old is not None and by_name["Facts"].new is not None
    data = comparison_view(found)
    assert data["completion"] == {"old": " x", "new": " x", "changed": False}
    assert {w["status"] for w in data["words"]} == {"kept", "inserted", "deleted"}


def test_report_and_page_say_what_changed():
    found, new = comparison()
    console = Console(width=60, record=True, color_system=None)
    console.print(diff_report(found, new, 0))
    printed = console.export_text()
    assert "completion unchanged" in printed and "Notes" in printed and "inserted, now" in printed
    page = diff_page(found, new, 0, "a → b")
    assert "<del>blue</del>" in page and 'title="was +' in page


@pytest.fixture
def repo(tmp_path):
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    git = ["git", "-C", str(tmp_path), "-c", "user.name=t", "-c", "user.email=t@t"]
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "a.prompt").write_text("version one 🚪\r\n", encoding="utf-8")
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "one"], check=True)
    (tmp_path / "sub" / "a.prompt").write_text("version two\n", encoding="utf-8")
    subprocess.run([*git, "commit", "-q", "-am", "two"], check=True)
    (tmp_path / "sub" / "a.prompt").write_text("working copy\n", encoding="utf-8")
    return tmp_path


def test_git_revisions_read_from_any_folder(repo, monkeypatch):
    path = repo / "sub" / "a.prompt"
    assert read_version(f"HEAD~1:{path}").text == "version one 🚪\r\n"  # CRLF kept
    assert read_version(f"HEAD:{path}").text == "version two\n"
    monkeypatch.chdir(repo / "sub")
    assert read_version("HEAD:a.prompt").text == "version two\n"
    assert read_version("a.prompt").text == "working copy\n"
    assert sides(["a.prompt"]) == ("HEAD:a.prompt", "a.prompt")
    with pytest.raises(SalienceError, match="git cannot read nope:a.prompt"):
        read_version("nope:a.prompt")


def test_outside_a_repository_is_a_clear_message(tmp_path):
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    (tmp_path / "b.prompt").write_text("text\n", encoding="utf-8")
    with pytest.raises(SalienceError, match="not in a git repository"):
        read_version(f"HEAD:{tmp_path / 'b.prompt'}")


def test_a_file_with_a_colon_is_a_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "x:y.prompt").write_text("colon\n", encoding="utf-8")
    assert not is_revision("x:y.prompt") and read_version("x:y.prompt").text == "colon\n"
    with pytest.raises(SalienceError, match="OLD NEW"):
        sides(["a", "b", "c"])
