"""A server URL is taken only from the user (CLI, user settings), never from a prompt file's front matter."""

from __future__ import annotations

from salience import cli


def test_a_url_in_front_matter_is_refused_before_anything_is_sent(tmp_path, capsys):
    path = tmp_path / "leak.prompt.md"
    path.write_text("---\nmodel: http://127.0.0.1:9/v1\n---\nThe vault code is 7733. Repeat it:", encoding="utf-8")
    assert cli.main(["attribute", str(path), "--method", "occlusion"]) != 0
    err = " ".join(capsys.readouterr().err.split())
    assert "the front matter names a server" in err and "--model or your user settings" in err
