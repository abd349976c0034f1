"""Write the bad-input corpus and `expected.yaml` (what the CLI and the server must say for each file).

Run `python tests/data/bad/make.py` after changing a case. The two largest inputs (5 MB, 100 000
tokens) are described in `expected.yaml` under `generate` and written by the tests, not committed.
Expectations: `ok` (a result; `warning`/`info` name a diagnostic too), `error` (CLI: exit 1 and
this text; server: an Error diagnostic with it), `info` (no run, an Information diagnostic).
The server gets the text an editor would show: UTF-16 decoded by its byte order mark, else UTF-8
with U+FFFD for bad bytes (`decode: surrogatepass` keeps encoded surrogates as lone surrogates).
"""

from __future__ import annotations

import gzip
import random
from pathlib import Path

import yaml

HERE = Path(__file__).parent
BODY = "The vault code is 7733. Repeat the vault code:"
OK = {"ok": True}

BINARY = {"error": "binary"}
NOT_UTF8 = {"error": "not valid UTF-8"}
EMPTY_CLI, EMPTY_SERVER = {"error": "the prompt is empty"}, {"info": "empty prompt"}


def fm(block: str, body: str = BODY) -> bytes:
    return f"---\n{block}\n---\n{body}".encode()


def twice(expected: dict) -> tuple[dict, dict]:
    """The same expectation of the CLI and of the server."""
    return expected, dict(expected)


def front_model(error: str) -> tuple[dict, dict]:
    """A model named in front matter that fails: the CLI is run without --model, so the front matter counts."""
    return {"error": error, "model": "front"}, {"error": error}


def rng_bytes(n: int, seed: int) -> bytes:
    return random.Random(seed).randbytes(n)


CASES: dict[str, tuple[str, bytes, dict, dict]] = {
    # name: (what it is, bytes, CLI expectation, server expectation)
    "png-image.prompt": (
        "a PNG header renamed to .prompt",
        b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(64),
        {"error": "binary file"},
        BINARY,
    ),
    "nul-in-text.prompt": ("one NUL byte in plain text", b"hello\x00world " + BODY.encode(), BINARY, BINARY),
    "gzip.prompt.md": ("a gzip stream", gzip.compress(BODY.encode() * 20, mtime=0), BINARY, BINARY),
    "random-bytes.prompt": ("4 KB of seeded random bytes", rng_bytes(4096, 1), BINARY, BINARY),
    "random-high-bytes.prompt": (
        "random bytes 0x80-0xff (no NUL)",
        bytes(b | 0x80 for b in rng_bytes(512, 2)),
        NOT_UTF8,
        OK,
    ),
    "latin1.prompt": (
        "Latin-1 text (é as one byte)",
        "Le café coûte 3 €? ".encode("cp1252") + BODY.encode(),
        NOT_UTF8,
        OK,
    ),
    "truncated-utf8.prompt": ("a multibyte character cut at the end", BODY.encode() + "😀".encode()[:2], NOT_UTF8, OK),
    "overlong-utf8.prompt": ("an overlong encoding of '/'", b"path \xc0\xaf etc " + BODY.encode(), NOT_UTF8, OK),
    "encoded-surrogate.prompt": (
        "a UTF-8-encoded lone surrogate (CESU style)",
        b"lone \xed\xa0\x80 surrogate " + BODY.encode(),
        NOT_UTF8,
        {"ok": True, "warning": "unpaired UTF-16 surrogate", "decode": "surrogatepass"},
    ),
    "utf16-le.prompt": (
        "UTF-16 LE with a byte order mark",
        "\ufeff".encode("utf-16-le") + BODY.encode("utf-16-le"),
        {"error": "UTF-16"},
        OK,
    ),
    "utf16-be.prompt": (
        "UTF-16 BE with a byte order mark",
        "\ufeff".encode("utf-16-be") + BODY.encode("utf-16-be"),
        {"error": "UTF-16"},
        OK,
    ),
    "utf8-bom.prompt": ("UTF-8 with a byte order mark", b"\xef\xbb\xbf" + BODY.encode(), OK, OK),
    "empty.prompt": ("an empty file", b"", EMPTY_CLI, EMPTY_SERVER),
    "whitespace-only.prompt": ("spaces, tabs and newlines", b" \t \n\n   \r\n\t\n", EMPTY_CLI, EMPTY_SERVER),
    "bom-only.prompt": ("only a UTF-8 byte order mark", b"\xef\xbb\xbf", EMPTY_CLI, EMPTY_SERVER),
    "newlines-only.prompt": ("a thousand empty lines", b"\n" * 1000, EMPTY_CLI, EMPTY_SERVER),
    "front-matter-only.prompt": ("front matter and no body", fm("method: saliency", ""), EMPTY_CLI, EMPTY_SERVER),
    "empty-messages.prompt": (
        "role markers with nothing in them",
        b"system:\n\nuser:\n  \nassistant:\n",
        EMPTY_CLI,
        EMPTY_SERVER,
    ),
    "crlf.prompt": ("CRLF line endings throughout", f"line one\r\nline two\r\n{BODY}\r\n".encode(), OK, OK),
    "mixed-endings.prompt": ("\\n, \\r\\n and lone \\r mixed", f"a\nb\r\nc\rd\n\r{BODY}\r".encode(), OK, OK),
    "cr-only.prompt": ("classic Mac \\r line endings", f"one\rtwo\r{BODY}\r".encode(), OK, OK),
    "crlf-front-matter.prompt": (
        "front matter with CRLF",
        f"---\r\nmethod: saliency\r\n---\r\n{BODY}".encode(),
        *twice(OK),
    ),
    "unicode-line-separators.prompt": (
        "U+2028, U+2029, NEL, VT and FF (not LSP line breaks)",
        f"a\u2028b\u2029c\x85d\x0be\x0cf {BODY}".encode(),
        *twice(OK),
    ),
    "control-chars.prompt": ("C0 controls other than NUL", bytes(range(1, 32)) + BODY.encode(), OK, OK),
    "emoji-zwj.prompt": (
        "ZWJ families, skin tones, flags, keycaps",
        f"👨‍👩‍👧‍👦 👩🏽‍💻 🏳️‍🌈 🇯🇵 1️⃣ {BODY} 🧑‍🤝‍🧑".encode(),
        *twice(OK),
    ),
    "emoji-only.prompt": ("only emoji", ("😀🎉🔥" * 40).encode(), OK, OK),
    "rtl.prompt": ("Arabic and Hebrew with direction marks", f"مرحبا \u200fשלום\u200e {BODY} عالم".encode(), OK, OK),
    "bidi-override.prompt": (
        "Trojan-Source bidi overrides",
        f"access\u202e\u2066 admin\u2069\u202c {BODY}".encode(),
        *twice(OK),
    ),
    "combining-marks.prompt": (
        "stacked combining marks (zalgo)",
        ("e" + "\u0301\u0316\u0324" * 30 + " ").encode() + BODY.encode(),
        *twice(OK),
    ),
    "cjk.prompt": (
        "Chinese and Japanese without spaces",
        f"金库密码是7733。请重复密码：日本語のテキスト。{BODY}".encode(),
        *twice(OK),
    ),
    "astral-math.prompt": ("mathematical alphanumerics (astral plane)", f"𝔘𝔫𝔦𝔠𝔬𝔡𝔢 𝕿𝖊𝖝𝖙 {BODY}".encode(), OK, OK),
    "noncharacters.prompt": ("U+FFFE, U+FFFF, U+10FFFF", f"\ufffe\uffff\U0010ffff {BODY}".encode(), OK, OK),
    "zero-width.prompt": (
        "ZWSP, ZWNJ, word joiner and a BOM mid-text",
        f"zero\u200bwidth\u200cjoin\u2060er\ufeff {BODY}".encode(),
        *twice(OK),
    ),
    "private-use.prompt": ("private-use characters", f"\ue000\uf8ff\U000f0000 {BODY}".encode(), OK, OK),
    "markdown-injection.prompt": (
        "backticks, HTML and link syntax that a hover must not break",
        f"```\n<script>alert(1)</script> **bold** [x](javascript:1) `{BODY}".encode(),
        *twice(OK),
    ),
    "long-word.prompt": ("a 1,500-character word", ("x" * 1500 + " " + BODY).encode(), OK, OK),
    "unclosed-front-matter.prompt": (
        "--- with no closing line",
        b"---\nmethod: saliency\n" + BODY.encode(),
        *twice({"error": "no closing ---"}),
    ),
    "invalid-yaml.prompt": (
        "an unclosed flow sequence",
        fm("method: [saliency"),
        *twice({"error": "invalid YAML"}),
    ),
    "yaml-tabs.prompt": (
        "YAML indented with tabs",
        fm("sample:\n\tname: x"),
        *twice({"error": "invalid YAML"}),
    ),
    "front-matter-list.prompt": (
        "a YAML list instead of a mapping",
        fm("- method\n- saliency"),
        *twice({"error": "must be a mapping"}),
    ),
    "front-matter-scalar.prompt": (
        "a bare string as front matter",
        fm("just some text"),
        *twice({"error": "must be a mapping"}),
    ),
    "front-matter-deep.prompt": (
        "YAML nested 5,000 levels deep",
        fm("a: " + "[" * 5000 + "]" * 5000),
        *twice({"error": "front matter"}),
    ),
    "front-matter-huge.prompt": (
        "20,000 unknown keys (about 400 KB of front matter)",
        fm("\n".join(f"key{i}: value {i}" for i in range(20000))),
        {"ok": True, "warning": "unknown front matter key"},
        {"ok": True, "warning": "more front matter problems not shown"},
    ),
    "alias-bomb.prompt": (
        "YAML aliases that expand to 10^9 items, used as sample values",
        fm(
            "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
            + "".join(
                f"{c}: &{c} [*{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}]\n"
                for p, c in zip("abcdefgh", "bcdefghi")
            )
            + "sample: {name: *i}",
            "Hi {{name}}. " + BODY,
        ),
        *twice({"error": "sample values must be text"}),
    ),
    "unknown-keys.prompt": (
        "misspelt and foreign keys",
        fm("modle: big\ntemperature: 0.7"),
        *twice({"ok": True, "warning": "unknown front matter key 'modle'"}),
    ),
    "wrong-types.prompt": (
        "a string for a number, a list for a bool",
        fm("max_new_tokens: many\nchat: [yes]"),
        *twice({"error": "max_new_tokens"}),
    ),
    "method-not-text.prompt": ("a number as the method", fm("method: 42"), {"error": "method"}, {"error": "method"}),
    "max-new-tokens-zero.prompt": (
        "max_new_tokens: 0",
        fm("max_new_tokens: 0"),
        *twice({"error": "max_new_tokens"}),
    ),
    "max-new-tokens-huge.prompt": (
        "max_new_tokens: 100000",
        fm("max_new_tokens: 100000"),
        *twice({"error": "max_new_tokens"}),
    ),
    "sample-not-mapping.prompt": (
        "sample: a string",
        fm("sample: hello", "Hi {{name}}"),
        *twice({"error": "sample"}),
    ),
    "unknown-method.prompt": (
        "a method that does not exist",
        fm("method: shapley_magic"),
        *twice({"error": "unknown method 'shapley_magic'"}),
    ),
    "unknown-model.prompt": (
        "a model path that does not exist",
        fm("model: /no/such/model"),
        *front_model("'/no/such/model' not found"),
    ),
    "model-not-a-directory.prompt": (
        "a device file as the model",
        fm("model: /dev/null"),
        *front_model("no config.json"),
    ),
    "model-text-file.prompt": (
        "this very file as the model",
        fm("model: tests/data/bad/model-text-file.prompt"),
        *front_model("not .gguf"),
    ),
    "model-root.prompt": (
        "/ as the model directory",
        fm("model: /"),
        *front_model("no config.json"),
    ),
    "placeholders-no-sample.prompt": (
        "placeholders and no sample",
        f"Hello {{{{name}}}} from {{{{city}}}}. {BODY}".encode(),
        *twice({"ok": True, "warning": "placeholder {{name}} has no value"}),
    ),
    "placeholder-missing-value.prompt": (
        "a sample without one placeholder's value",
        fm("sample:\n  name: Ada", "Hello {{name}} from {{city}}. " + BODY),
        *twice({"ok": True, "warning": "{{city}} has no value in sample"}),
    ),
    "malformed-placeholders.prompt": (
        "{{ }}, {{{x}}} and an unclosed {{x",
        fm("sample:\n  x: 1", "a {{ }} b {{{x}}} c {{x " + BODY),
        *twice(OK),
    ),
    "text-before-roles.prompt": (
        "text before the first role marker",
        f"stray\nuser:\n{BODY}".encode(),
        *twice({"ok": True, "warning": "before the first role marker"}),
    ),
    "chat-without-template.prompt": (
        "chat: true on a model with no chat template",
        fm("chat: true"),
        *twice({"error": "no chat template"}),
    ),
    "empty-target.prompt": ("target: an empty string", fm("target: ''"), {"error": "target"}, {"error": "target"}),
}

GENERATED = {
    "huge-5mb.prompt": {
        "what": "a 5 MB prompt",
        "repeat": "lorem ipsum dolor sit amet ",
        "bytes": 5_000_000,
        "cli": {"error": "too large"},
        "server": {"error": "too large"},
    },
    "tokens-100k.prompt": {
        "what": "100 000 tokens (byte-level tiny model: 100 000 bytes)",
        "repeat": "token ",
        "bytes": 100_000,
        "cli": {"error": "the limit is 1984 for this model"},
        "server": {"ok": True, "warning": "tokens are not attributed"},
    },
}


def main() -> None:
    expected = {}
    for name, (what, data, cli, server) in CASES.items():
        (HERE / name).write_bytes(data)
        expected[name] = {"what": what, "cli": cli, "server": server}
    with open(HERE / "expected.yaml", "w", encoding="utf-8") as out:
        out.write("# Written by make.py: what the CLI and the server say for each bad input.\n")
        yaml.safe_dump({"files": expected, "generate": GENERATED}, out, allow_unicode=True, sort_keys=False, width=120)
    print(f"{len(CASES)} files and {len(GENERATED)} generated cases")


if __name__ == "__main__":
    main()
