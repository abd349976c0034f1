"""The `salience` command end to end on the embedded model, as a user runs it."""

from __future__ import annotations

import contextlib
import html
import io
import json
import os
import re
import socket
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

from salience import cli
from salience.attribution import DEFAULT_METHOD, method_names

pytestmark = pytest.mark.embedded
EXAMPLES = Path(__file__).parents[2] / "examples"


def salience(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """`salience ARGS` run in this process (its imports and the embedded model's conversion are paid once);
    `test_methods_...` and `test_the_module_entry_point_...` run the real command in a process of its own."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.chdir(cwd or Path.cwd()), contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        with warnings.catch_warnings(record=True) as caught:
            for shown in (FutureWarning, UserWarning):  # what a user's run prints (every time, not once)
                warnings.simplefilter("always", shown)
            code = cli.main(list(args))
    printed = "".join(f"{w.category.__name__}: {w.message}\n" for w in caught)
    return subprocess.CompletedProcess(["salience", *args], code, out.getvalue(), printed + err.getvalue())


@pytest.fixture
def offline(monkeypatch):
    """Sockets refuse to connect: a run that reaches for the network fails."""

    def refuse(*args, **kwargs):
        raise OSError("network access attempted")

    for name in ("connect", "connect_ex"):
        monkeypatch.setattr(socket.socket, name, refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


@pytest.mark.parametrize(
    "name,answer", [("door-codes.prompt", "7733"), ("chat.prompty", "Madrid"), ("capital.prompt", "Paris")]
)
def test_examples_complete_with_the_expected_answer(embedded, name, answer):
    done = salience("attribute", str(EXAMPLES / name), "--method", "saliency")
    assert done.returncode == 0, done.stderr
    assert not re.search(r"\w+Warning:", done.stderr)
    assert answer in done.stdout and "top 10 words" in done.stdout


def test_json_holds_the_full_result(embedded):
    done = salience("attribute", str(EXAMPLES / "apples.prompt"), "--json", "--max-new-tokens", "2")
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert len(data["matrix"]) == len(data["target_ids"]) and len(data["aggregate"]) == len(data["source"])
    text = (EXAMPLES / "apples.prompt").read_text()
    assert all(text[a:b] for a, b in (t["range"] for t in data["source"] if t["range"]))


def test_html_page_is_self_contained(embedded, tmp_path):
    out = tmp_path / "page.html"
    done = salience(
        "attribute",
        str(EXAMPLES / "unicode.prompt"),
        "--html",
        str(out),
        "--max-new-tokens",
        "2",
        "--method",
        "attention",
    )
    assert done.returncode == 0, done.stderr
    page = out.read_text(encoding="utf-8")
    heatmap = re.search(r'<pre id="heatmap">(.*?)</pre>', page, re.S).group(1)
    shown = html.unescape(re.sub(r"<[^>]+>", "", heatmap))
    assert shown.startswith((EXAMPLES / "unicode.prompt").read_text(encoding="utf-8"))
    assert "<script>" in page and "src=" not in page and "http" not in page.split("<body>")[1]


def test_params_reach_the_method(embedded):
    done = salience(
        "attribute",
        str(EXAMPLES / "capital.prompt"),
        "--method",
        "integrated_gradients",
        "--param",
        "steps=4",
        "--max-new-tokens",
        "1",
        "--json",
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["parameters"]["steps"] == 4


def test_attnlrp_runs_from_the_cli_with_checkpointing(embedded):
    done = salience(
        "attribute",
        str(EXAMPLES / "capital.prompt"),
        "--method",
        "attnlrp",
        "--param",
        "checkpointing=true",
        "--max-new-tokens",
        "1",
        "--json",
    )
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert data["method"] == "attnlrp" and data["parameters"]["checkpointing"] is True
    assert any(abs(score) > 0 for score in data["aggregate"])


def test_sig_warns_when_its_paths_have_not_converged(embedded, margin):
    """One step cannot follow SmolLM2's rough paths: the scores miss the drops, and the user is told."""
    args = (
        "attribute",
        str(EXAMPLES / "apples.prompt"),
        "--method",
        "sequential_integrated_gradients",
        "--param",
        "granularity=token",
        "--max-new-tokens",
        "1",
        "--json",
    )
    done = salience(*args, "--param", "steps=1")
    assert done.returncode == 0, done.stderr
    gap = json.loads(done.stdout)["extras"]["max_completeness_gap"]
    margin("SIG at one step, completeness gap", gap, above=0.5)
    assert f"up to {gap:.2f}; more `steps`" in done.stderr


def test_reagent_runs_offline_from_the_cli_and_warns_when_it_has_not_converged(embedded, offline):
    """Sockets refuse to connect in this run; one step with the top token kept cannot meet the rule."""
    args = (
        "attribute",
        str(EXAMPLES / "capital.prompt"),
        "--method",
        "reagent",
        "--max-new-tokens",
        "1",
        "--param",
        "probes=4",
        "--param",
        "max_steps=1",
        "--param",
        "keep_top_n=1",
        "--json",
    )
    done = salience(*args)
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert data["method"] == "reagent" and data["parameters"]["replacement"] == "model"
    assert abs(sum(data["matrix"][0]) - 1) < 1e-4  # one target: every visible token is in the file
    assert data["extras"]["converged"] == [False] and "not converged for 1 of 1" in done.stderr
    assert not re.search(r"\w+Warning:", done.stderr)


@pytest.mark.parametrize(
    "method,params",
    [
        ("textgenshap", ["level=sentence"]),
        ("lime", ["n_samples=24"]),
        ("kernelshap", ["n_samples=24", "level=sentence"]),
    ],
)
def test_coalition_methods_run_offline_from_the_cli_with_a_table_of_parts(embedded, offline, method, params):
    args = ["attribute", str(EXAMPLES / "rag.prompt.md"), "--method", method, "--max-new-tokens", "2"]
    for param in params:
        args += ["--param", param]
    done = salience(*args)
    assert done.returncode == 0, done.stderr
    assert "parts of the prompt" in done.stdout and "Document 3" in done.stdout
    assert not re.search(r"\w+Warning:", done.stderr)  # no library deprecations: current APIs (`cache=`)
    if method == "textgenshap":
        assert re.search(r"segment\s+│ Document 3: The Statue of Liberty.*│\s+[-+]\d+\.\d{3} │\s+exact", done.stdout)


def test_methods_lists_every_method_with_its_cost_in_80_columns():
    done = subprocess.run(
        [sys.executable, "-m", "salience", "methods"],
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "80"},
        timeout=60,
    )
    assert done.returncode == 0
    assert max(map(len, done.stdout.splitlines())) <= 80
    names = {line.split("│")[0].strip() for line in done.stdout.splitlines() if "│" in line}
    assert set(method_names()) <= names  # whole names in the first column, none cut with "…"


def bad_inputs(tmp: Path) -> list[tuple[list[str], str]]:
    binary = tmp / "b.prompt"
    binary.write_bytes(b"\x00\xff")
    broken = tmp / "f.prompt"
    broken.write_text("---\nmodel: [oops\n---\nhi")
    return [
        (["attribute", str(tmp / "missing.prompt")], "no such file"),
        (["attribute", str(binary)], "binary file"),
        (["attribute", str(broken)], "invalid YAML"),
        (["attribute", str(EXAMPLES / "capital.prompt"), "--method", "nope"], "unknown method 'nope'"),
        (["attribute", str(EXAMPLES / "capital.prompt"), "--model", str(tmp / "no-model")], "not found"),
        (["attribute", str(EXAMPLES / "capital.prompt"), "--param", "steps=2"], "steps"),
    ]


def test_bad_inputs_give_one_clear_line_and_fail(tmp_path):
    for args, message in bad_inputs(tmp_path):
        done = salience(*args)
        assert done.returncode != 0, args
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("salience: error:") and message in lines[0], done.stderr


def test_faithfulness_reports_figures_against_random(embedded):
    done = salience("faithfulness", str(EXAMPLES / "capital.prompt"), "--samples", "2", "--points", "3", "--json")
    assert done.returncode == 0, done.stderr
    figures = json.loads(done.stdout)
    assert figures["method"] == DEFAULT_METHOD and len(figures["morf"]) == 4
    assert {"soft_ns", "soft_nc", "random_ns", "random_nc", "area", "random_area", "nc_log_ratio"} <= set(figures)
    table = salience("faithfulness", str(EXAMPLES / "capital.prompt"), "--samples", "2", "--points", "3")
    assert "× random" in table.stdout and "MoRF/LeRF" in table.stdout


def test_the_attention_sink_is_treated_and_said_alike_in_the_cli_the_page_and_the_editor(embedded, tmp_path):
    """A plain prompt starts with a sink token the file does not show: the file's first word ('The', the
    loudest mark without it) drops out of the top 3, and the terminal, the HTML page and the editor's hover
    and run summary all say what the sink token holds, with the same ranks; --json keeps its column."""
    from salience.attribution import AttributionResult
    from salience.server.layers import heatmap
    from salience.server.settings import Settings
    from salience.views.reading import Reading

    prompt, page, raw = EXAMPLES / "door-codes.prompt", tmp_path / "page.html", tmp_path / "result.json"
    done = salience("attribute", str(prompt), "--json", str(raw), "--html", str(page), "--method", DEFAULT_METHOD)
    assert done.returncode == 0, done.stderr
    text = prompt.read_text(encoding="utf-8")
    result = AttributionResult.from_json(raw.read_text(encoding="utf-8"))
    assert result.source[0].range is None and result.extras["sink_tokens"] == 1
    assert len(result.aggregate) == len(result.source) == len(result.matrix[0])

    reading = Reading.of(result, text)
    first = reading.spans[0]
    assert reading.span_text(first) == "The" and reading.rank(first) > 3
    note = reading.hidden_note()
    assert note.startswith("the start token the model reads first holds") and "attention sink" in note

    view = heatmap.View.of(text, Settings(), "utf-16", result)
    hover = heatmap.hover(view, first.start).contents.value
    shown = {
        "terminal": " ".join(done.stdout.split()),
        "page": " ".join(html.unescape(page.read_text(encoding="utf-8")).split()),
        "hover": hover,
        "summary": heatmap.summary_markdown(view),
    }
    for where, words in shown.items():
        assert note in words, where
    assert "im_start" not in shown["page"]  # the page's matrix rows are the file's words: no sink row, no scale
    assert f"rank {reading.rank(first)} of {len(reading.order)}" in hover
    for cells in reading.top_rows(5):  # the same top parts, in the same order, in the terminal and on the page
        assert re.search(r"[\s│]+".join(map(re.escape, cells)), done.stdout), cells
        assert "</td><td>".join(cells[:2]) in shown["page"]
