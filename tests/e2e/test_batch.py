"""`salience attribute DIR`: a folder in worker processes, results stored by content hash, an HTML report."""

from __future__ import annotations

import re

from salience import cli
from salience.attribution import AttributionResult

PROMPTS = {
    "a.prompt": "The vault code is 7733. Repeat the vault code:",
    "b.prompt.md": "---\nmax_new_tokens: 3\n---\nDocument 1: the red door code is 4812.\nThe red code:",
    "sub/c.prompty": "system:\nYou repeat codes.\nuser:\nThe code is 1234. Repeat it:",
}


def folder(tmp_path):
    root = tmp_path / "prompts"
    for name, text in PROMPTS.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text, encoding="utf-8")
    (root / "sub" / "broken.prompt").write_bytes(b"\x89PNG\x00\x00")
    (root / "notes.txt").write_text("not a prompt")
    (root / ".hidden").mkdir()
    (root / ".hidden" / "skip.prompt").write_text("hidden folders are skipped")
    return root


def run(capsys, *args):
    code = cli.main(["attribute", *map(str, args)])
    out, err = capsys.readouterr()
    return code, " ".join(out.split()), " ".join(err.split())


def test_a_folder_runs_in_processes_resumes_and_reports(tiny_model_dir, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("SALIENCE_CACHE", str(tmp_path / "cache"))
    root, report = folder(tmp_path), tmp_path / "out" / "report.html"
    args = (root, "--model", tiny_model_dir, "--method", "saliency", "--max-new-tokens", "2")
    code, out, err = run(capsys, *args, "--jobs", "2", "--report", report)
    assert code == 1 and "4 prompts: 3 explained, 0 stored by an earlier run, 1 failed" in out, (out, err)
    assert "broken.prompt" in out and "skip.prompt" not in out and "notes.txt" not in out
    index = report.read_text(encoding="utf-8")
    links = re.findall(r'href="([^"]+)"', index)
    assert sorted(links) == sorted(f"report/{name}.html" for name in PROMPTS)
    assert all((report.parent / link).is_file() for link in links) and "binary file" in index

    _, out, _ = run(capsys, *args)  # nothing changed: every result comes from the store
    assert "3 prompts" not in out and "0 explained, 3 stored by an earlier run, 1 failed" in out
    (root / "a.prompt").write_text(PROMPTS["a.prompt"] + " Now!", encoding="utf-8")
    _, out, _ = run(capsys, *args)  # one file edited: only it runs again
    assert "1 explained, 2 stored by an earlier run, 1 failed" in out


def test_stored_results_equal_a_single_file_run(tiny_model_dir, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("SALIENCE_CACHE", str(tmp_path / "cache"))
    root = tmp_path / "one"
    root.mkdir()
    (root / "a.prompt").write_text(PROMPTS["a.prompt"], encoding="utf-8")
    run(capsys, root, "--model", tiny_model_dir, "--max-new-tokens", "2")
    (entry,) = (tmp_path / "cache" / "results").iterdir()
    stored = AttributionResult.from_json(entry.read_text(encoding="utf-8"))
    code = cli.main(
        ["attribute", str(root / "a.prompt"), "--model", str(tiny_model_dir), "--max-new-tokens", "2", "--json"]
    )
    single = AttributionResult.from_json(capsys.readouterr().out)
    assert code == 0 and stored.aggregate == single.aggregate and stored.method == single.method


def test_damaged_or_unwritable_stores_do_not_stop_the_run(tiny_model_dir, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("SALIENCE_CACHE", str(tmp_path / "cache"))
    root = folder(tmp_path)
    args = (root, "--model", tiny_model_dir, "--method", "saliency", "--max-new-tokens", "2")
    run(capsys, *args)
    for entry in (tmp_path / "cache" / "results").iterdir():
        entry.write_text("{truncated")
    _, out, _ = run(capsys, *args)
    assert "3 explained, 0 stored" in out  # unreadable entries are misses, written again
    blocker = tmp_path / "file"
    blocker.write_text("")
    monkeypatch.setenv("SALIENCE_CACHE", str(blocker / "cache"))
    _, out, err = run(capsys, *args)
    assert "3 explained" in out and "cannot store results" in err and "cannot resume" in err
