"""Captum's implementations of our deterministic methods, step by step: the oracle for tests and benchmarks.

Needs the `dev` extra (captum). Each target step t is attributed on its own sequence x ++ y_<t, the way
Captum's per-output methods work, so agreement checks our batching, KV reuse and aggregation.
"""

from __future__ import annotations

import torch

from salience.attribution.methods.base import baseline_embedding, explained_quantity
from salience.attribution.targets import Target

CAPTUM_METHODS = ("saliency", "input_x_gradient", "integrated_gradients", "occlusion")


def step_forward(loaded, target: Target, step: int):
    """Captum's forward: embeddings of x ++ y_<t  ->  f_t for each batch row."""
    one = Target([target.ids[step]], [target.foil_ids[step]], target.generated)

    def forward(embeds: torch.Tensor) -> torch.Tensor:
        logits = loaded.model(inputs_embeds=embeds, logits_to_keep=1).logits
        return explained_quantity(logits, one)[:, 0]
    return forward


def step_embeddings(loaded, source, target, step):
    ids = torch.tensor([source + target.ids[:step]])
    return loaded.embed(ids).detach()


def captum_rows(loaded, source, target, method: str, **kw) -> torch.Tensor:
    """[T, N] scores from Captum for `method` with our parameter names (steps, rule, baseline, window)."""
    from captum.attr import InputXGradient, IntegratedGradients, Occlusion, Saliency

    rows = []
    for step in range(len(target.ids)):
        embeds = step_embeddings(loaded, source, target, step)
        forward = step_forward(loaded, target, step)
        if method == "saliency":
            row = Saliency(forward).attribute(embeds, abs=True).norm(dim=-1)
        elif method == "input_x_gradient":
            row = InputXGradient(forward).attribute(embeds).sum(-1)
        elif method == "integrated_gradients":
            base = baseline_embedding(loaded, kw["baseline"]).expand_as(embeds).contiguous()
            row = IntegratedGradients(forward).attribute(
                embeds, baselines=base, n_steps=kw["steps"], method=kw["rule"]).sum(-1)
        else:
            base = baseline_embedding(loaded, kw["baseline"]).expand_as(embeds).contiguous()
            row = Occlusion(forward).attribute(embeds, sliding_window_shapes=(kw["window"], embeds.shape[-1]),
                                               strides=(1, embeds.shape[-1]), baselines=base)[..., 0]
        rows.append(row[0, :len(source)])
    return torch.stack(rows)


def inseq_sig_rows(loaded, source, target, steps: int, rule: str, baseline: str | int) -> torch.Tensor:
    """[T, N] from Inseq's SequentialIntegratedGradients (token granularity, summed over the hidden dim).

    Needs the `dev` extra (inseq). Like Inseq, every position of x ++ y_<t gets its own path at step t.
    """
    from inseq.attr.feat.ops import SequentialIntegratedGradients

    rows = []
    for step in range(len(target.ids)):
        embeds = step_embeddings(loaded, source, target, step)
        base = baseline_embedding(loaded, baseline).expand_as(embeds).contiguous()
        row = SequentialIntegratedGradients(step_forward(loaded, target, step)).attribute(
            embeds, baselines=base, n_steps=steps, method=rule).sum(-1)
        rows.append(row[0, :len(source)])
    return torch.stack(rows)
