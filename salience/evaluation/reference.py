"""Captum's implementations of our deterministic methods, step by step: the oracle for tests and benchmarks.

Needs the `dev` extra (captum). Each target step t is attributed on its own sequence x ++ y_<t, the way
Captum's per-output methods work, so agreement checks our batching, KV reuse and aggregation. For the
coalition methods, Captum's Shapley values, Lime and KernelShap run on the plain attention-masked game.
"""

from __future__ import annotations

import torch

from salience.attribution.compute.gradients import baseline_embedding, explained_quantity
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
            row = (
                IntegratedGradients(forward)
                .attribute(embeds, baselines=base, n_steps=kw["steps"], method=kw["rule"])
                .sum(-1)
            )
        else:
            base = baseline_embedding(loaded, kw["baseline"]).expand_as(embeds).contiguous()
            row = Occlusion(forward).attribute(
                embeds,
                sliding_window_shapes=(kw["window"], embeds.shape[-1]),
                strides=(1, embeds.shape[-1]),
                baselines=base,
            )[..., 0]
        rows.append(row[0, : len(source)])
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
        row = (
            SequentialIntegratedGradients(step_forward(loaded, target, step))
            .attribute(embeds, baselines=base, n_steps=steps, method=rule)
            .sum(-1)
        )
        rows.append(row[0, : len(source)])
    return torch.stack(rows)


class UniformSampler:
    """Stands in for Inseq's POS-tag sampler (whose NLTK data needs a download): any allowed id, uniformly.

    Same draws as our `uniform` replacement: non-special ids the model can embed.
    """

    def __init__(self, allowed: torch.Tensor) -> None:
        self.allowed = allowed

    def __call__(self, input_ids: torch.Tensor) -> torch.Tensor:
        index = torch.randint(len(self.allowed), input_ids.shape)
        return self.allowed[index].to(input_ids.device)


def inseq_reagent(model_dir: str, loaded, seed: int = 0, **params):
    """An Inseq model set up for ReAGent with the uniform sampler patched in; `params` are Reagent's own."""
    import inseq
    from inseq.attr.feat.ops import reagent as inseq_reagent_module

    from salience.attribution.methods.reagent.replacement import allowed_ids

    allowed = allowed_ids(loaded)
    original = inseq_reagent_module.POSTagTokenSampler
    inseq_reagent_module.POSTagTokenSampler = lambda *args, **kwargs: UniformSampler(allowed)
    try:
        model = inseq.load_model(
            model_dir, "reagent", device=str(loaded.device), model_kwargs={"dtype": loaded.dtype}, **params
        )
    finally:
        inseq_reagent_module.POSTagTokenSampler = original
    _count_chain_steps(model)
    torch.manual_seed(seed)
    return model


def _count_chain_steps(model) -> None:
    """Count, in `model.chain_steps`, the probe updates Inseq makes that count (probes not yet stopped).

    Inseq keeps computing stopped probes until all of a target's probes stop; this is the useful work.
    """
    evaluator = model.attribution_method.method.rationalizer.importance_score_evaluator
    stopping = evaluator.stopping_condition_evaluator
    original = type(stopping).__call__
    model.chain_steps = 0

    def counted(*args, **kwargs):
        model.chain_steps += int((~evaluator.stop_mask).sum())
        return original(stopping, *args, **kwargs)

    evaluator.stopping_condition_evaluator = type("CountedStopping", (), {"__call__": staticmethod(counted)})()


def inseq_reagent_rows(model, text: str, target_text: str, n_source: int, seed: int = 0) -> torch.Tensor:
    """[T, N] ReAGent scores from an `inseq_reagent` model (NaN where no probe stopped)."""
    torch.manual_seed(seed)
    out = model.attribute(text, text + target_text, show_progress=False)
    scores = out.sequence_attributions[0].target_attributions.float()  # [seq, gen, hidden], repeated
    return scores[:n_source, :, 0].T


def masked_game(loaded, inputs, players: list[list[int]]):
    """Captum's forward for coalition methods: present players [B, P] → Σ_t f_t, run the plain way.

    Each coalition is one forward of the whole teacher-forced sequence with transformers' attention mask
    zero on the absent players' tokens; y_1 is read at the last present source position. A coalition
    with no source token at all reads y_1 after the start token, as salience's runner does.
    """
    ids = inputs.sequence_ids()
    n_source = inputs.n_source
    membership = torch.zeros((len(players), n_source), dtype=torch.bool)
    for p, tokens in enumerate(players):
        membership[p, tokens] = True

    @torch.inference_mode()
    def forward(present: torch.Tensor) -> torch.Tensor:
        absent = (~present.bool()).float() @ membership.float() > 0  # [B, L]
        totals = torch.empty(len(absent))
        empty = absent.all(dim=1)
        for r in empty.nonzero()[:, 0].tolist():
            totals[r] = _after_start_token(loaded, inputs)
        rows = (~empty).nonzero()[:, 0]
        if len(rows):
            mask = torch.ones((len(rows), ids.shape[1]), dtype=torch.long)
            mask[:, :n_source] = (~absent[rows]).long()
            last = torch.stack([(~a).nonzero().max() for a in absent[rows]])
            reads = torch.cat([last[:, None], torch.arange(n_source, ids.shape[1]).expand(len(rows), -1)], dim=1)
            keep = reads.unique()
            logits = loaded.model(input_ids=ids.expand(len(rows), -1), attention_mask=mask, logits_to_keep=keep).logits
            picked = logits.gather(1, torch.searchsorted(keep, reads)[..., None].expand(-1, -1, logits.shape[-1]))
            totals[rows] = explained_quantity(picked, inputs.target).sum(dim=1).cpu()
        return totals

    return forward


def _after_start_token(loaded, inputs) -> torch.Tensor:
    """Σ_t f_t with no source token: y_1 read after the start token (the runner's convention)."""
    start = loaded.tokenizer.bos_token_id
    seq = torch.tensor([[start if start is not None else loaded.tokenizer.eos_token_id, *inputs.target.ids[:-1]]])
    positions = torch.arange(inputs.n_source - 1, inputs.n_source - 1 + seq.shape[1])[None]
    logits = loaded.model(input_ids=seq, position_ids=positions, attention_mask=torch.ones_like(seq)).logits
    return explained_quantity(logits, inputs.target).sum()


def captum_coalition_scores(
    loaded, inputs, players: list[list[int]], method: str, n_samples: int = 200, seed: int = 0
) -> torch.Tensor:
    """Per-player scores [P] from Captum: exact `ShapleyValues`, or `Lime` / `KernelShap` with `n_samples`
    (Lime with the weighted least squares salience uses; KernelShap with its default linear regression)."""
    from captum._utils.models.linear_model import SkLearnLinearRegression
    from captum.attr import KernelShap, Lime, ShapleyValues

    forward = masked_game(loaded, inputs, players)
    n = len(players)
    args = {"baselines": torch.zeros(1, n), "feature_mask": torch.arange(n)[None]}
    torch.manual_seed(seed)
    if method == "textgenshap":
        return ShapleyValues(forward).attribute(torch.ones(1, n), perturbations_per_eval=16, **args)[0]
    if method == "lime":
        explainer = Lime(forward, interpretable_model=SkLearnLinearRegression())
    else:
        explainer = KernelShap(forward)
    return explainer.attribute(torch.ones(1, n), n_samples=n_samples, perturbations_per_eval=16, **args)[0]
