"""Which method should be the interactive default? Time and needle rank of each, on the embedded model.

`.venv/bin/python benchmarks/default_method.py`: for examples/door-codes.prompt (the answer 7733 depends on
"red door is 7733" only) prints each method's attribution time (generation excluded, best of 2) and the
rank of the best needle token ("7733" in the red-door sentence) among all file tokens. Expensive methods
(SIG: minutes per prompt on a CPU) are left out: they cannot be an interactive default.
"""

from __future__ import annotations

import time
from pathlib import Path

import salience.attribution as engine

PROMPT = Path(__file__).parents[1] / "examples" / "door-codes.prompt"


def main() -> None:
    loaded = engine.load_model()
    text = engine.read_prompt_file(PROMPT)
    doc = engine.parse_prompt(text)
    encoded = engine.encode_prompt(doc, loaded.tokenizer, chat=False)
    target = engine.resolve_target(loaded, encoded.input_ids, None, None, doc.front_matter.max_new_tokens)
    needle = (text.index("7733"), text.index("7733") + 4)
    print(f"{PROMPT.name}: {len(encoded.input_ids)} tokens, explains {loaded.tokenizer.decode(target.ids)!r}")
    print(f"{'method':22s} {'seconds':>8s} {'needle rank':>12s}")
    for name in (n for n in engine.method_names() if engine.get_method(n).cost != "expensive"):
        best = float("inf")
        for _ in range(2):
            start = time.perf_counter()
            result = engine.get_method(name).attribute(
                engine.AttributionInput(loaded, encoded.input_ids, encoded.ranges, target)
            )
            best = min(best, time.perf_counter() - start)
        ranked = result.top_tokens(len(result.source))
        rank = next(r for r, i in enumerate(ranked, 1) if needle[0] <= result.source[i].range[0] < needle[1])
        print(f"{name:22s} {best:8.2f} {rank:>8d} of {len(ranked)}")


if __name__ == "__main__":
    main()
