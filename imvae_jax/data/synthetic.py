"""A seeded two-domain generator with planted cross-domain structure.

Model (all Gaussian draws standard normal, ``k = synthetic_dim``, ``rho = synthetic_shared``):

* user u has a shared interest ``s_u`` and per-domain interests ``a_u^D``; its interest in domain D
  is ``p_u^D = sqrt(rho) s_u + sqrt(1 - rho) a_u^D`` (so with rho = 0.9 most of what a user likes
  in Y can be read off X), and likewise a drift ``d_u^D`` built from a shared and a specific part;
* item i of domain D has factors ``q_i`` and a popularity ``b_i``;
* a user's items in D are drawn without replacement with probability proportional to
  ``exp(beta q_i.p_u^D / sqrt(k) + b_i)`` (Gumbel top-L), and ordered in time by their alignment
  with the drift (``q_i.d_u^D`` plus noise), so the last item (the target) is the one most in the
  direction the user is moving: readable from the history's trend and from the other domain;
* lengths are long-tailed (``2 + floor(3 * Lomax(1.8))``, capped at 60); a share
  ``synthetic_overlap`` of users has both domains, the rest one domain (half X, half Y), and half
  of the overlapping users get a short (2-3 items) list in one of their domains: many users have a
  short target-domain history and a long other-domain one, where the cross-domain signal pays.

The sequences then go through the paper's protocol (:func:`imvae_jax.data.build.build_protocol`),
so ``K_o``, ``K_cs``, ``D_s`` and the 80/10/10 split apply as for real ratings. With the defaults
(3,000 users) :func:`build_synthetic` takes well under two seconds.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from imvae_jax.data import ragged
from imvae_jax.data.build import STREAM_SYNTHETIC, Sequences, build_protocol, rng_for
from imvae_jax.data.config import DataConfig
from imvae_jax.data.schema import DatasetError, Split

MAX_LEN = 60
BETA = 5.0  # sharpness of a user's taste
DRIFT_NOISE = 0.5  # noise of the time order around the drift direction


def _lengths(rng: np.random.Generator, n: int) -> np.ndarray:
    return np.minimum(2 + np.floor(3.0 * rng.pareto(1.8, n)).astype(np.int64), MAX_LEN)


def _domain_sequences(
    rng: np.random.Generator,
    interest: np.ndarray,
    drift: np.ndarray,
    lengths: np.ndarray,
    n_items: int,
    dim: int,
) -> tuple[ragged.Ragged, np.ndarray]:
    """Ragged ``[U]`` ids 1..n_items (0-length where ``lengths`` is 0) and per-value times in [0, 1)."""
    users = interest.shape[0]
    factors = rng.standard_normal((n_items, dim))
    popularity = rng.standard_normal(n_items)
    if (lengths > n_items).any():
        raise DatasetError(f"synthetic: a sequence of {lengths.max()} items in a catalogue of {n_items}")
    top = int(min(max(lengths.max(initial=0), 1), n_items))
    score = BETA * (interest @ factors.T) / np.sqrt(dim) + popularity[None, :]
    score += rng.gumbel(size=score.shape)
    chosen = np.argpartition(-score, top - 1, axis=1)[:, :top] if top < n_items else np.tile(np.arange(n_items), (users, 1))
    chosen_score = np.take_along_axis(score, chosen, axis=1)
    by_score = np.argsort(-chosen_score, axis=1)
    chosen = np.take_along_axis(chosen, by_score, axis=1)  # [U, top], best first
    kept = np.arange(top)[None, :] < lengths[:, None]
    # time order: ascending alignment with the drift, plus noise
    alignment = np.einsum("utk,uk->ut", factors[chosen], drift) / np.sqrt(dim)
    time_key = alignment + DRIFT_NOISE * rng.standard_normal(alignment.shape)
    time_key = np.where(kept, time_key, np.inf)
    order = np.argsort(time_key, axis=1)
    items = np.take_along_axis(chosen, order, axis=1)[np.take_along_axis(kept, order, axis=1)]
    offsets = ragged.from_lengths(lengths)
    # times: sorted uniforms within each row, so the two domains interleave in time
    raw = rng.random(len(items))
    rows = ragged.row_ids((offsets, items))
    times = raw[np.lexsort((raw, rows))]
    return (offsets, (items + 1).astype(np.int32)), times


def generate(cfg: DataConfig) -> Sequences:
    """Per-user sequences of both domains from the generator (module docstring)."""
    users, dim, rho = cfg.synthetic_users, cfg.synthetic_dim, cfg.synthetic_shared
    if users < 10:
        raise DatasetError(f"synthetic_users must be at least 10, got {users}")
    if not 0.0 <= rho <= 1.0 or not 0.0 <= cfg.synthetic_overlap <= 1.0:
        raise DatasetError("synthetic_shared and synthetic_overlap must lie in [0, 1]")
    rng = rng_for(cfg.seed, STREAM_SYNTHETIC)
    shared, shared_drift = rng.standard_normal((users, dim)), rng.standard_normal((users, dim))
    kind = rng.random(users)  # < overlap: both; then X only; then Y only
    both = kind < cfg.synthetic_overlap
    only_x = ~both & (kind < cfg.synthetic_overlap + (1 - cfg.synthetic_overlap) / 2)
    only_y = ~both & ~only_x
    len_x, len_y = _lengths(rng, users), _lengths(rng, users)
    short = both & (rng.random(users) < 0.5)
    short_x = short & (rng.random(users) < 0.5)
    short_len = rng.integers(2, 4, users)
    len_x = np.where(short_x, short_len, len_x)
    len_y = np.where(short & ~short_x, short_len, len_y)
    len_x = np.where(only_y, 0, len_x)
    len_y = np.where(only_x, 0, len_y)
    out: dict[str, Any] = {}
    for dom, lengths, n_items in (("x", len_x, cfg.synthetic_items_x), ("y", len_y, cfg.synthetic_items_y)):
        interest = np.sqrt(rho) * shared + np.sqrt(1 - rho) * rng.standard_normal((users, dim))
        drift = np.sqrt(rho) * shared_drift + np.sqrt(1 - rho) * rng.standard_normal((users, dim))
        lst, times = _domain_sequences(rng, interest, drift, lengths, n_items, dim)
        out[dom], out[f"times_{dom}"] = lst, times
    return Sequences(
        user_ids=list(range(users)),
        item_ids_x=[None, *range(cfg.synthetic_items_x)],
        item_ids_y=[None, *range(cfg.synthetic_items_y)],
        **out,
    )


def build_synthetic(cfg: DataConfig | None = None, progress=None, **overrides: Any) -> dict[str, Split]:
    """A synthetic ``{train, valid, test}`` dataset; ``overrides`` replace DataConfig fields.

    Example (tests): ``build_synthetic(synthetic_users=500, num_eval_negatives=99)``.
    """
    cfg = dataclasses.replace(cfg or DataConfig(), **overrides)
    source = {
        "kind": "synthetic",
        "users": cfg.synthetic_users,
        "items_x": cfg.synthetic_items_x,
        "items_y": cfg.synthetic_items_y,
        "overlap": cfg.synthetic_overlap,
        "shared": cfg.synthetic_shared,
        "dim": cfg.synthetic_dim,
        "seed": cfg.seed,
    }
    return build_protocol(generate(cfg), cfg, source, progress)
