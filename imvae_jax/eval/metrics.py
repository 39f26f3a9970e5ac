"""Ranks of the target among scored candidates, and NDCG@k / HR@k / MRR from those ranks.

Rank convention (default ``tie_mode="pessimistic"``): the 0-based rank of the target is the
number of *other* candidates whose score is ``>=`` the target's. Ties therefore count
against the target: a model that gives every candidate the same score gets the worst
rank, never the best. A NaN score also counts against the target (a NaN target gets the
worst rank; a NaN competitor beats the target), so a diverged model cannot look good.

``tie_mode="authors-all"`` / ``"authors-group"`` reproduce the authors' code for like-for-like
comparisons (``reference/authors_code_spec.md`` section 5): their "all users" group ranks
with ``rank = #{neg >= pos - 1e-7}`` (the 1e-7 taken in the scores' dtype), their cold-start
and tailed groups with ``rank = #{neg > pos}`` (ties in the target's favour).

Ranks are computed in JAX (jit-able); metrics from ranks in NumPy.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from typing import Literal

import jax
import jax.numpy as jnp
import numpy as np

TieMode = Literal["pessimistic", "authors-all", "authors-group"]
TIE_MODES: tuple[str, ...] = ("pessimistic", "authors-all", "authors-group")
AUTHORS_TIE_EPSILON = 1e-7


def _beats(others: jax.Array, target: jax.Array, tie_mode: str) -> jax.Array:
    """Whether each competitor outranks the target (NaN on either side counts as yes)."""
    if tie_mode == "pessimistic":
        beats = others >= target
    elif tie_mode == "authors-all":
        beats = others >= target - jnp.asarray(AUTHORS_TIE_EPSILON, dtype=target.dtype)
    elif tie_mode == "authors-group":
        beats = others > target
    else:
        raise ValueError(f"tie_mode must be one of {TIE_MODES}, got {tie_mode!r}")
    return beats | jnp.isnan(others) | jnp.isnan(target)


@functools.partial(jax.jit, static_argnames=("tie_mode",))
def target_ranks(scores: jax.Array, tie_mode: TieMode = "pessimistic") -> jax.Array:
    """0-based rank of column 0 (the target) among the row's candidates.

    scores: ``[B, C]``, column 0 = target, columns 1.. = negatives. Returns int32 ``[B]`` in
    ``[0, C-1]``: the number of negatives that beat the target (see module docstring).
    """
    if scores.ndim != 2 or scores.shape[1] < 1:
        raise ValueError(f"scores must be [B, C] with C >= 1, got shape {scores.shape}")
    target = scores[:, :1]
    beats = _beats(scores[:, 1:], target, tie_mode)
    return jnp.sum(beats, axis=1, dtype=jnp.int32)


def protocol_ranks(scores: jax.Array, tie_mode: Literal["pessimistic", "authors"] = "pessimistic") -> tuple[jax.Array, jax.Array | None]:
    """``(ranks, ranks_all)`` for :func:`summarize` under ``EvalConfig.tie_mode``.

    "pessimistic": one rank array for every group (ranks_all None). "authors": the authors'
    cold-start/tailed ranks (``authors-group``) and their all-users ranks (``authors-all``).
    """
    if tie_mode == "pessimistic":
        return target_ranks(scores), None
    if tie_mode == "authors":
        return target_ranks(scores, "authors-group"), target_ranks(scores, "authors-all")
    raise ValueError(f"tie_mode must be 'pessimistic' or 'authors', got {tie_mode!r}")


@functools.partial(jax.jit, static_argnames=("chunk_size",))
def full_catalogue_ranks(
    user_scores: jax.Array, targets: jax.Array, history: jax.Array, chunk_size: int = 4096
) -> jax.Array:
    """0-based rank of each target among all items of its domain, history masked.

    user_scores: ``[B, N+1]`` scores of every item id of the target domain (column 0 = the
    padding id, never a candidate). targets: ``[B]`` ids in ``1..N``. history: ``[B, T]`` ids
    to exclude (0 = padding; duplicates allowed; an id equal to the target is not excluded).
    Returns int32 ``[B]``: the number of items ``i`` in ``1..N``, ``i != target``, ``i`` not in
    the history, whose score is ``>=`` the target's (ties and NaN against the target).

    The catalogue is swept in blocks of ``chunk_size`` columns, so no ``[B, N+1]`` boolean
    intermediate is materialised; history ids are then subtracted (deduplicated), which costs
    ``O(B T log T)`` rather than a ``[B, N+1]`` mask. Ids outside ``[0, N]`` in ``history``
    are ignored.
    """
    batch, width = user_scores.shape
    targets = targets.astype(jnp.int32)
    target_scores = jnp.take_along_axis(user_scores, targets[:, None], axis=1)  # [B, 1]
    n_chunks = -(-width // chunk_size)
    padded = jnp.pad(user_scores, ((0, 0), (0, n_chunks * chunk_size - width)))

    def add_chunk(index: jax.Array, count: jax.Array) -> jax.Array:
        start = index * chunk_size
        block = jax.lax.dynamic_slice_in_dim(padded, start, chunk_size, axis=1)  # [B, c]
        ids = start + jnp.arange(chunk_size, dtype=jnp.int32)  # [c]
        valid = (ids >= 1) & (ids < width)
        counted = valid[None, :] & (ids[None, :] != targets[:, None])
        beats = _beats(block, target_scores, "pessimistic") & counted
        return count + jnp.sum(beats, axis=1, dtype=jnp.int32)

    count = jax.lax.fori_loop(0, n_chunks, add_chunk, jnp.zeros((batch,), jnp.int32))

    # remove history items that were counted: each distinct id once, not padding, not the target
    hist = jnp.sort(history.astype(jnp.int32), axis=1)
    first = jnp.concatenate(
        [jnp.ones((batch, 1), bool), hist[:, 1:] != hist[:, :-1]], axis=1
    )  # [B, T]
    in_range = (hist >= 1) & (hist < width)
    excluded = first & in_range & (hist != targets[:, None])
    hist_scores = jnp.take_along_axis(user_scores, jnp.clip(hist, 0, width - 1), axis=1)
    counted_hist = _beats(hist_scores, target_scores, "pessimistic") & excluded
    return count - jnp.sum(counted_hist, axis=1, dtype=jnp.int32)


# ----------------------------------------------------------------------------- metrics (NumPy)


def hit_rate(ranks: np.ndarray, k: int) -> np.ndarray:
    """HR@k per row: 1 if the 0-based rank is below k. ``[B] -> [B]`` float64."""
    return (np.asarray(ranks) < k).astype(np.float64)


def ndcg(ranks: np.ndarray, k: int) -> np.ndarray:
    """NDCG@k per row with one relevant item: ``1/log2(rank+2)`` if rank < k else 0."""
    ranks = np.asarray(ranks, dtype=np.float64)
    return np.where(ranks < k, 1.0 / np.log2(ranks + 2.0), 0.0)


def reciprocal_rank(ranks: np.ndarray) -> np.ndarray:
    """1/(rank+1) per row, no cut-off (averaged, this is MRR)."""
    return 1.0 / (np.asarray(ranks, dtype=np.float64) + 1.0)


def metric_names(ks: Iterable[int]) -> list[str]:
    """Names in report order: ndcg@k and hr@k for each k, then mrr."""
    names = []
    for k in ks:
        names += [f"ndcg@{k}", f"hr@{k}"]
    return names + ["mrr"]


def per_row_metrics(ranks: np.ndarray, ks: Iterable[int]) -> dict[str, np.ndarray]:
    """Every metric of :func:`metric_names` as a per-row ``[B]`` float64 array."""
    out: dict[str, np.ndarray] = {}
    for k in ks:
        out[f"ndcg@{k}"] = ndcg(ranks, k)
        out[f"hr@{k}"] = hit_rate(ranks, k)
    out["mrr"] = reciprocal_rank(ranks)
    return out


def summarize(
    ranks: np.ndarray,
    domains: np.ndarray,
    groups: Mapping[str, np.ndarray],
    ks: Iterable[int] = (5, 10, 20),
    valid: np.ndarray | None = None,
    ranks_all: np.ndarray | None = None,
) -> dict[str, dict[str, dict[str, float | int | None]]]:
    """Nested ``{domain: {group: {metric: mean, 'n': rows}}}`` (see :func:`groups.aggregate`).

    ranks, domains: ``[R]``; groups: name -> bool ``[R]`` (e.g. from :func:`groups.group_masks`);
    valid: optional ``[R]`` mask of real rows (a batch's ``mask``); ranks_all: ranks for the
    ``all`` group only (authors-compatible mode: ``authors-all`` ties there, ``authors-group``
    ties in the other groups).
    """
    from imvae_jax.eval.groups import aggregate

    return aggregate(ranks, domains, groups, ks=ks, valid=valid, ranks_all=ranks_all)
