"""Does a trained IM-VAE use its latents? A personalisation probe on one split.

A VAE whose posteriors have collapsed onto their priors can still rank well by learning a
good *global* item ranking. This probe tells the two apart:

* ``model``: the split's metrics as evaluated (z = posterior means);
* ``shared_latents``: the same model with every row given the same latents (each latent's
  mean over the split's rows): whatever it scores then is user-independent. If the two
  agree, the model's ranking does not depend on the user;
* per latent: the spread of the posterior means across rows (std per dimension, averaged
  over dimensions) against the posterior scale sigma, and the KL to its prior (nats, summed
  over dimensions, mean over rows) on this split.

``imvae probe RUN_DIR [--split test] [--json]``; :func:`probe_run` (a run folder) or
:func:`probe` (a model in memory) for code. The experiment engine stores the probe of every
trained IM-VAE as its ``same-latents`` protocol.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np


def latent_statistics(mu: np.ndarray, sigma: np.ndarray, prior: tuple[np.ndarray, np.ndarray] | None) -> dict[str, float | None]:
    """``mu, sigma [N, d]`` of one posterior over N rows; ``prior`` = (mu, sigma) broadcastable to ``[N, d]``.

    ``spread``: mean over dimensions of the std over rows of ``mu``; ``sigma``: mean of
    ``sigma``; ``spread_over_sigma``: their ratio; ``kl_to_prior``: mean over rows of
    KL(N(mu, sigma^2) || prior), summed over dimensions (None without a prior).
    """
    mu, sigma = np.asarray(mu, np.float64), np.asarray(sigma, np.float64)
    spread = float(mu.std(axis=0).mean())
    mean_sigma = float(sigma.mean())
    kl = None
    if prior is not None:
        p_mu, p_sigma = (np.asarray(v, np.float64) for v in prior)
        per_dim = np.log(p_sigma / sigma) + (sigma**2 + (mu - p_mu) ** 2) / (2 * p_sigma**2) - 0.5
        kl = float(per_dim.sum(axis=-1).mean())
    return {"spread": spread, "sigma": mean_sigma, "spread_over_sigma": spread / mean_sigma, "kl_to_prior": kl}


def probe(graphdef: Any, params: Any, rest: Any, evaluator: Any, ks: tuple[int, ...] = (10,)) -> dict[str, Any]:
    """Run the probe over ``evaluator``'s split (a :class:`imvae_jax.train.evaluate.SplitEvaluator`),
    ranking ties as the evaluator does (its ``tie_mode``).

    Returns ``{"model": result, "shared_latents": result, "latents": {name: statistics},
    "rows": N}`` where a result is ``{domain: {group: {metric: value, "n": rows}}}``.
    """
    import jax
    import jax.numpy as jnp
    from flax import nnx

    from imvae_jax.eval.groups import aggregate, group_masks
    from imvae_jax.eval.metrics import protocol_ranks

    tie_mode = evaluator.tie_mode

    @jax.jit
    def forward(params: Any, rest: Any, batch: Mapping[str, Any], latents: Mapping[str, jax.Array] | None):
        model = nnx.merge(graphdef, params, rest)
        if not hasattr(model, "priors"):
            raise TypeError(f"{type(model).__name__} has no latents to probe (IM-VAE variants only)")
        out = model(batch, latents=latents)
        posteriors = {name: (g.mu, jnp.exp(g.log_sigma)) for name, g in out.posteriors.items()}
        return protocol_ranks(out.scores, tie_mode), posteriors

    keys = ("seq_x", "seq_y", "pseudo_x", "pseudo_y", "target_domain", "cold_start", "candidates")
    batches = [{k: b[k] for k in keys} | {"mask": b["mask"], "row": b["row"]} for b in evaluator.batches()]
    real = [b["mask"] > 0 for b in batches]

    def ranked(latents: Mapping[str, Any] | None) -> tuple[list[tuple[np.ndarray, np.ndarray | None]], dict[str, list]]:
        """Per batch (ranks, ranks_all) of the real rows, and each posterior's (mu, sigma) parts."""
        ranks, moments = [], {}
        for batch, keep in zip(batches, real):
            (rank, rank_all), posteriors = jax.device_get(forward(params, rest, {k: batch[k] for k in keys}, latents))
            ranks.append((np.asarray(rank)[keep], None if rank_all is None else np.asarray(rank_all)[keep]))
            for name, (mu, sigma) in posteriors.items():
                moments.setdefault(name, []).append((mu[keep], sigma[keep]))
        return ranks, moments

    def result(ranks: list[tuple[np.ndarray, np.ndarray | None]]) -> dict[str, Any]:
        ranks_all = None if ranks[0][1] is None else np.concatenate([a for _, a in ranks])
        return aggregate(np.concatenate([r for r, _ in ranks]), domain_ids, masks, ks=ks, ranks_all=ranks_all)

    own, moments = ranked(None)
    posteriors = {
        name: (np.concatenate([m for m, _ in parts]), np.concatenate([s for _, s in parts])) for name, parts in sorted(moments.items())
    }
    shared, _ = ranked({name: mu.mean(axis=0) for name, (mu, _) in posteriors.items()})
    row_ids = np.concatenate([b["row"][keep] for b, keep in zip(batches, real)])
    domain_ids = np.concatenate([b["target_domain"][keep] for b, keep in zip(batches, real)])
    masks = group_masks({name: value[row_ids] for name, value in evaluator.columns.items()})
    priors = jax.device_get(_priors(graphdef, params, rest))
    return {
        "model": result(own),
        "shared_latents": result(shared),
        "latents": {name: latent_statistics(mu, sigma, priors.get(name)) for name, (mu, sigma) in posteriors.items()},
        "rows": int(row_ids.size),
    }


def probe_run(target: Any, split: str = "test", **restore_options: Any) -> dict[str, Any]:
    """:func:`probe` of a run folder's checkpoint (best by default; ``restore_options`` as
    :func:`imvae_jax.train.restore.restore`), plus the ``epoch`` probed."""
    from imvae_jax.train import loop
    from imvae_jax.train.restore import restore

    r = restore(target, **restore_options)
    evaluator = loop.make_evaluator(r.cfg, r.splits[split], r.graphdef, r.parallel, full_ranking=False)
    return {"epoch": r.epoch, **probe(r.graphdef, r.state.params, r.state.rest, evaluator, ks=tuple(r.cfg.eval.ks))}


def _priors(graphdef: Any, params: Any, rest: Any) -> dict[str, tuple[Any, Any]]:
    import jax.numpy as jnp
    from flax import nnx

    model = nnx.merge(graphdef, params, rest)
    return {name: (g.mu, jnp.exp(g.log_sigma)) for name, g in model.priors().items()}


def markdown(result: Mapping[str, Any], title: str, metric: str = "hr@10") -> str:
    """The probe as two Markdown tables: metrics per domain and group, then the latents."""
    lines = [f"### {title}", "", f"{metric.upper()} in %: as evaluated vs every row given the same latents (user-independent).", ""]
    lines += ["| domain | group | n | model | shared latents |", "|---|---|---:|---:|---:|"]
    for domain, groups in result["model"].items():
        for group, values in groups.items():
            shared = result["shared_latents"][domain][group].get(metric)
            if values.get(metric) is None:
                continue
            lines.append(f"| {domain} | {group} | {values['n']} | {100 * values[metric]:.2f} | {100 * shared:.2f} |")
    lines += ["", "| latent | spread of mu | mean sigma | spread / sigma | KL to prior (nats) |", "|---|---:|---:|---:|---:|"]
    for name, s in result["latents"].items():
        kl = "-" if s["kl_to_prior"] is None else f"{s['kl_to_prior']:.2e}"
        lines.append(f"| {name} | {s['spread']:.2e} | {s['sigma']:.3f} | {s['spread_over_sigma']:.1e} | {kl} |")
    return "\n".join(lines)
