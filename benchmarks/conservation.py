"""Where AttnLRP's relevance goes, layer by layer: `make conservation` (the embedded model by default).

With the rules installed, the relevance held by any tensor h of the forward is h · (modified ∂f/∂h). A
conservative rule hands on what it receives, so along the residual stream the relevance changes only
where a rule absorbs some: per decoder layer, the attention block (from the layer's input to the residual
after attention) and the MLP block (from there to the layer's output); then the final norm and the head
(from the last layer's output to the logit), and the input embeddings' sum, which is the heatmap's total.
Prints each as a share of the explained logit, for the target tokens of a prompt's greedy continuation.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import torch

import salience.attribution as engine

PROMPT = Path(__file__).parents[1] / "examples" / "door-codes.prompt"


def decoder_layers(model: torch.nn.Module) -> list[torch.nn.Module]:
    return list(model.base_model.layers)


def residual_points(model: torch.nn.Module) -> tuple[dict[str, torch.Tensor], list[Any]]:
    """Hooks that keep, per layer, its input, the residual after attention (the post-attention norm's input)
    and its output, each retaining its gradient; returns the store and the hooks' handles."""
    kept: dict[str, torch.Tensor] = {}
    handles = []

    def keep(name: str, tensor: torch.Tensor) -> None:
        tensor.retain_grad()
        kept[name] = tensor

    for index, layer in enumerate(decoder_layers(model)):
        handles.append(
            layer.register_forward_pre_hook(
                lambda _m, args, kwargs, i=index: keep(
                    f"{i}.in", kwargs.get("hidden_states", args[0] if args else None)
                ),
                with_kwargs=True,
            )
        )
        handles.append(
            layer.post_attention_layernorm.register_forward_pre_hook(
                lambda _m, args, i=index: keep(f"{i}.mid", args[0])
            )
        )
        handles.append(
            layer.register_forward_hook(
                lambda _m, _a, out, i=index: keep(f"{i}.out", out[0] if isinstance(out, tuple) else out)
            )
        )
        for name in ("q_proj", "k_proj", "v_proj", "o_proj"):
            projection = getattr(layer.self_attn, name)
            handles.append(projection.register_forward_hook(lambda _m, _a, out, i=index, n=name: keep(f"{i}.{n}", out)))
    return kept, handles


def relevance(tensor: torch.Tensor) -> float:
    """Relevance held by a [1, N, d] tensor for the backward just run."""
    return float((tensor.detach() * tensor.grad)[0].sum())


def measure(loaded: engine.LoadedModel, ids: list[int], target_ids: list[int], step: int) -> dict[str, Any]:
    """The relevance at every residual point for target step `step` (0-based), and its logit."""
    model = loaded.model
    embeds = loaded.embed(torch.tensor([ids])).detach().requires_grad_(True)
    kept, handles = residual_points(model)
    try:
        with engine.attnlrp_rules(model), torch.enable_grad():
            logits = model(inputs_embeds=embeds).logits  # the last T positions predict the T target tokens
            f = logits[0, len(ids) - len(target_ids) + step, target_ids[step]].float()
            f.backward()
    finally:
        for handle in handles:
            handle.remove()
    layers = len(decoder_layers(model))
    r = {name: relevance(kept[name]) for name in kept}
    return {
        "logit": f.item(),
        "embeddings": relevance(embeds),
        "attention": [r[f"{i}.mid"] - r[f"{i}.in"] for i in range(layers)],  # received minus handed on
        "values": [r[f"{i}.o_proj"] / 2 - r[f"{i}.v_proj"] for i in range(layers)],  # the value path's half
        "softmax": [r[f"{i}.o_proj"] / 2 - r[f"{i}.q_proj"] - r[f"{i}.k_proj"] for i in range(layers)],
        "mlp": [r[f"{i}.out"] - r[f"{i}.mid"] for i in range(layers)],
        "head": f.item() - r[f"{layers - 1}.out"],
        "below": r["0.in"] - relevance(embeds),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("prompt", nargs="?", default=str(PROMPT))
    parser.add_argument("--model", default="default")
    parser.add_argument("--max-new-tokens", type=int, default=6)
    args = parser.parse_args(argv)
    loaded = engine.load_model(args.model)
    doc = engine.parse_prompt(Path(args.prompt).read_text())
    result = engine.explain(loaded, doc, engine.Request(method="attnlrp", max_new_tokens=args.max_new_tokens))
    source, targets = [t.id for t in result.source], result.target_ids
    print(f"{loaded.model_id}: {Path(args.prompt).name}, {len(source)} prompt tokens, targets {result.target_tokens}")
    print("step  logit  inputs hold (share)    lost in: attention (softmax, values)    MLPs  norm+head  embedding")
    rows = []
    for step in range(len(targets)):
        ids = source + targets[:-1]
        m = measure(loaded, ids, targets, step)
        rows.append(m)
        share = {k: sum(m[k]) / m["logit"] for k in ("attention", "softmax", "values", "mlp")}
        print(
            f"{step:>4}  {m['logit']:5.2f}  {m['embeddings']:6.2f} ({m['embeddings'] / m['logit']:6.1%})       "
            f"{share['attention']:6.1%} ({share['softmax']:6.1%}, {share['values']:5.1%})  {share['mlp']:6.1%}  "
            f"{m['head'] / m['logit']:6.1%}     {m['below'] / m['logit']:6.1%}"
        )
    print("\nper layer, step 0: share of the logit lost in the attention block (negative: gained), of which softmax")
    first = rows[0]
    for i, (a, b) in enumerate(zip(first["attention"], first["softmax"])):
        print(f"  layer {i:>2}: {a / first['logit']:7.1%}  {b / first['logit']:7.1%}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
