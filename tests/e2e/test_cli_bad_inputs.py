"""Every bad input through `salience attribute`: a one-line message or a result, never a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest
from bad_corpus import BAD, bad_inputs, words

from salience import cli

CASES = bad_inputs()
ROOT = Path(__file__).parents[2]


def test_the_corpus_is_complete():
    assert len(CASES) >= 50
    assert {case.name for case in CASES if case.repeat is None} == {
        p.name for p in BAD.iterdir() if p.name not in {"make.py", "expected.yaml"}
    }


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_cli_says_what_is_wrong(case, tiny_model_dir, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(ROOT)  # model paths in the corpus are relative to the repository
    model = [] if case.cli.get("model") == "front" else ["--model", str(tiny_model_dir)]
    code = cli.main(["attribute", str(case.path(tmp_path)), *model, "--max-new-tokens", "2"])
    out, err = capsys.readouterr()
    said = words(err)
    assert "Traceback" not in err and "internal error" not in said, said
    if "error" in case.cli:
        assert code == 1 and said.startswith("salience: error:") and words(case.cli["error"]) in said, said
        assert said.count("salience: error:") == 1 and not out
    else:
        assert code == 0 and "top 10 words" in out, said
        assert words(case.cli.get("warning", "")) in said
