"""Explaining a served model: salience's requests against Captum's pattern, and against the local run.

`.venv/bin/python benchmarks/remote.py` (or `make bench-remote`) starts vLLM's CPU build on the embedded model
as the tests do (tests/served/vllm_cpu.py; `--url` names a running server instead), explains
examples/door-codes.prompt by occlusion there and here (same tokens, same target: the scores are checked
equal), and prints, each from one run on the same machine:
(a) the server's prefill tokens (its own `usage` counts) per explained file: salience's requests (token ids,
    each sequence cut after the target) against Captum's pattern (one request per perturbation, the perturbed
    ids decoded to text and re-tokenised by the server, the target text appended);
(b) sequences per second: the same sequences 32 to a request with 4 in flight, against one per request;
(c) remote against local occlusion wall time (local reuses a KV-cached prefix; vLLM's prompt-logprob path
    does not);
(d) Captum 0.9's own RemoteLLMAttribution (FeatureAblation) with its VLLMProvider, run in build/vllm-cpu's
    environment (which has the openai client it needs; captum installed there without its requirements).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx2 as httpx
import torch

ROOT = Path(__file__).parents[1]
PROMPT = ROOT / "examples" / "door-codes.prompt"
NEW_TOKENS = 8


def vllm_cpu():
    spec = importlib.util.spec_from_file_location("vllm_cpu", ROOT / "tests" / "served" / "vllm_cpu.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["vllm_cpu"] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def timed(work):
    start = time.perf_counter()
    out = work()
    return out, time.perf_counter() - start


def one_request_each(base_url: str, model: str, prompts: list) -> tuple[list[int], float]:
    """Captum's pattern: one completion request per prompt (text or ids), one after another, with plain httpx;
    (the server's prefill tokens per request, seconds)."""
    counts, start = [], time.perf_counter()
    with httpx.Client(base_url=base_url, timeout=120) as client:
        for prompt in prompts:
            body = {"model": model, "prompt": prompt, "max_tokens": 1, "temperature": 0.0, "prompt_logprobs": 0}
            answer = client.post("/v1/completions", json=body)
            answer.raise_for_status()
            counts.append(int(answer.json()["usage"]["prompt_tokens"]))
    return counts, time.perf_counter() - start


CAPTUM_SCRIPT = """
import json, sys, time
from captum.attr import FeatureAblation, RemoteLLMAttribution, TextTokenInput
from captum.attr._core.remote_provider import VLLMProvider
from transformers import AutoTokenizer
url, model_dir, prompt, target = sys.argv[1:5]
tokenizer = AutoTokenizer.from_pretrained(model_dir)
provider = VLLMProvider(url)
attribution = RemoteLLMAttribution(FeatureAblation(RemoteLLMAttribution.placeholder_model), tokenizer, provider)
start = time.perf_counter()
result = attribution.attribute(TextTokenInput(prompt, tokenizer), target=target)
print(json.dumps({"seconds": time.perf_counter() - start, "tokens": len(result.input_tokens)}))
"""


CAPTUM = ["captum==0.9.0", "matplotlib", "contourpy", "cycler", "fonttools", "kiwisolver", "pyparsing"]
CAPTUM += ["python-dateutil"]
"""Captum and what it imports beyond the vLLM environment's own packages (installed beside it, not into it)."""


def captum_itself(url: str, model_dir: Path, prompt: str, target: str) -> str:
    """Captum's RemoteLLMAttribution over the server, with the vLLM environment's Python (openai is there) and
    Captum in a folder of its own on PYTHONPATH, so the test server's environment stays as its lock says."""
    server = vllm_cpu()
    overlay = server.HOME / "captum"
    if not (overlay / "captum").is_dir():
        pip = [str(server.PYTHON), "-m", "pip", "-q", "--disable-pip-version-check", "install", "--no-deps"]
        subprocess.run([*pip, "--target", str(overlay), *CAPTUM], check=True)
    run = subprocess.run(
        [str(server.PYTHON), "-c", CAPTUM_SCRIPT, url, str(model_dir), prompt, target],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(overlay)},
    )
    if run.returncode:
        return f"does not run: {(run.stderr.strip().splitlines() or ['?'])[-1]}"
    found = json.loads(run.stdout.strip().splitlines()[-1])
    return f"{found['seconds']:.1f} s for {found['tokens']} tokens"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", help="a running vLLM server serving the embedded model (else one is started)")
    args = parser.parse_args()
    from salience.attribution import Request, ServerOptions, explain, load_model, model_directory, parse_prompt

    torch.set_num_threads(max(1, torch.get_num_threads()))
    model_dir, _ = model_directory("default", print)
    server = vllm_cpu()
    url = args.url or server.server(model_dir).url
    try:
        served = load_model(url, server=ServerOptions(tokenizer=str(model_dir)))
        local = load_model()
        doc, request = parse_prompt(PROMPT.read_text("utf-8")), Request(method="occlusion", max_new_tokens=NEW_TOKENS)
        explain(local, doc, request)  # warm both paths once
        explain(served, doc, request)
        served.backend.prompt_tokens = served.backend.generated_tokens = 0
        remote, remote_s = timed(lambda: explain(served, doc, request))
        ours, extra = served.backend.prompt_tokens, served.backend.generated_tokens
        here, local_s = timed(lambda: explain(local, doc, request))
        gap = max(abs(a - b) for ra, rb in zip(remote.matrix, here.matrix) for a, b in zip(ra, rb))
        n, t = len(remote.source), len(remote.target_ids)
        unk = served.tokenizer.unk_token_id if served.tokenizer.unk_token_id is not None else 0
        ids = [s.id for s in remote.source] + remote.target_ids
        sequences = [ids] + [ids[:i] + [unk] + ids[i + 1 :] for i in range(n)]
        texts = [served.tokenizer.decode(sequence) for sequence in sequences]  # Captum sends text
        base, name = url.removesuffix("/v1"), served.model_id
        counts, theirs_s = one_request_each(base, name, texts)
        theirs = sum(counts)
        drifted = sum(count != len(sequence) for count, sequence in zip(counts, sequences))
        _, batched_s = timed(lambda: served.backend.score(sequences))
        _, alone_s = timed(lambda: one_request_each(base, name, sequences))
        batched, alone = len(sequences) / batched_s, len(sequences) / alone_s
        captum = captum_itself(url, model_dir, PROMPT.read_text("utf-8"), served.tokenizer.decode(remote.target_ids))
    finally:
        if not args.url:
            server.stop()
    print(f"examples/door-codes.prompt: {n} prompt tokens, {t} target tokens, occlusion; {url}")
    print(f"scores remote vs local: largest difference {gap:.2e}")
    print(f"(a) server prefill tokens: salience {ours}, Captum's pattern {theirs} ({theirs / ours:.2f}x);")
    print(f"    salience's sequences hold {n + 1} x {n + t} = {(n + 1) * (n + t)} tokens; the server also decoded")
    print(f"    {extra} tokens for them (one per request's sequence: {extra / ours:.1%} of the prefill)")
    print(f"    {drifted} of {n + 1} text round trips re-tokenised to another length than the ids perturbed")
    print(f"    wall: salience {remote_s:.1f} s, Captum's pattern {theirs_s:.1f} s ({theirs_s / remote_s:.2f}x)")
    print(f"(b) sequences per second: batched {batched:.2f}, one per request {alone:.2f} ({batched / alone:.2f}x)")
    print(f"(c) occlusion: remote {remote_s:.1f} s, local {local_s:.1f} s ({remote_s / local_s:.2f}x)")
    print(f"(d) Captum 0.9 RemoteLLMAttribution + VLLMProvider: {captum}")


if __name__ == "__main__":
    sys.exit(main())
