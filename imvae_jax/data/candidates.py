"""Evaluation candidates: seeded negatives per row, uniform over the target domain's catalogue.

For every row, ``k`` distinct items drawn uniformly (without replacement) from the target domain's
items ``1..n_items`` minus the row's target-domain history and target. The draw is vectorised:
each row draws ids with replacement in draw order, repeats and excluded ids are skipped, and the
first ``k`` survivors are kept; that is exactly sequential sampling without replacement. Rows
short of ``k`` survivors draw again. Same seed and same rows -> the same negatives.

This pool (the whole catalogue) differs from the authors' code, which draws from the ids seen in
the evaluated file's column, unseeded, at every evaluation (caveat 5 of the data README).
"""

from __future__ import annotations

import numpy as np

from imvae_jax.data import ragged
from imvae_jax.data.ragged import Ragged
from imvae_jax.data.schema import DatasetError, Split, lists_to_arrow

CHUNK_ROWS = 1024


def _draw_size(pool: int, k: int) -> int:
    """Draws per row that usually yield ``k`` distinct survivors out of ``pool`` (coupon collector)."""
    if pool <= k:
        return k
    return int(1.15 * pool * np.log(pool / (pool - k + 0.5))) + 32


def sample_negatives(
    target_domain: np.ndarray,
    target_item: np.ndarray,
    history: Ragged,
    n_items: tuple[int, int],
    k: int,
    seed: int,
) -> np.ndarray:
    """``[R, k]`` int32 negatives per row (target-domain ids), excluding ``history`` and the target.

    ``history``: each row's target-domain history (ragged ``[R]``).
    """
    from imvae_jax.data.build import STREAM_NEGATIVES, rng_for

    rng = rng_for(seed, STREAM_NEGATIVES)
    n_rows = len(target_item)
    n_target = np.where(np.asarray(target_domain) == 0, n_items[0], n_items[1]).astype(np.int64)
    width = int(max(n_items)) + 1
    hist_rows = ragged.row_ids(history)
    # exclusion keys: history and target of every row
    excluded = np.unique(
        np.concatenate(
            [
                ragged.pair_keys(hist_rows, history[1], width),
                ragged.pair_keys(np.arange(n_rows), np.asarray(target_item), width),
            ]
        )
    )
    n_excluded = np.bincount(excluded // width, minlength=n_rows)
    pool = n_target - n_excluded
    short = pool < k
    if short.any():
        r = int(np.flatnonzero(short)[0])
        raise DatasetError(
            f"row {r}: only {pool[r]} items of domain {'XY'[int(target_domain[r])]} lie outside its history and "
            f"target, fewer than the {k} negatives asked for; lower num_eval_negatives"
        )
    out = np.zeros((n_rows, k), np.int32)
    pending = np.arange(n_rows)
    for start in range(0, n_rows, CHUNK_ROWS):
        rows = pending[start : start + CHUNK_ROWS]
        todo = rows
        attempt = 0
        while todo.size:
            draws = max(_draw_size(int(pool[todo].min()), k), k) * (2**attempt)
            sample = _sample_rows(rng, todo, n_target[todo], excluded, width, k, draws)
            done = sample[0]
            out[todo[done]] = sample[1]
            todo = todo[~done]
            attempt += 1
    return out


def _sample_rows(rng, rows, n_target, excluded, width, k, draws):
    """One round of draws for ``rows``; returns (done mask [C], negatives [done, k])."""
    c = rows.size
    values = (rng.random((c, draws)) * n_target[:, None]).astype(np.int64) + 1  # uniform 1..n
    values = np.minimum(values, n_target[:, None])
    keys = rows[:, None].astype(np.int64) * width + values
    valid = ~np.isin(keys, excluded)
    # a repeat of an earlier draw in the same row is not a new item
    order = np.argsort(values, axis=1, kind="stable")
    sorted_values = np.take_along_axis(values, order, axis=1)
    repeat_sorted = np.zeros_like(valid)
    repeat_sorted[:, 1:] = sorted_values[:, 1:] == sorted_values[:, :-1]
    repeat = np.zeros_like(valid)
    np.put_along_axis(repeat, order, repeat_sorted, axis=1)
    valid &= ~repeat
    rank = np.cumsum(valid, axis=1)
    done = rank[:, -1] >= k
    take = valid & (rank <= k) & done[:, None]
    return done, values[take].reshape(-1, k).astype(np.int32)


def add_negatives(split: Split, seed: int, k: int = 999) -> Split:
    """``split`` with a ``negatives`` column of ``k`` seeded negatives per row; ``negatives_seed`` set."""
    ox, vx = split.column_lists("seq_x")
    oy, vy = split.column_lists("seq_y")
    domain = split.column("target_domain").astype(np.int64)
    history = ragged.where(domain == 0, (ox, vx), (oy, vy))
    negatives = sample_negatives(domain, split.column("target_item"), history, split.n_items, k, seed)
    offsets = np.arange(len(split) + 1, dtype=np.int64) * k
    return split.with_columns(
        {"negatives": lists_to_arrow(offsets, negatives.reshape(-1))},
        {"negatives_seed": int(seed), "negatives_pool": "catalogue"},
    )
