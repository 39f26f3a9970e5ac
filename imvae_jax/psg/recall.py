"""Top-k recall from embedding matrices, chunked over users, and the ranking metrics of LightGCN.

Scores are ``E_u · E_v^T`` (LightGCN's ``sigmoid`` is monotone and so irrelevant for ranking),
computed ``chunk`` queries at a time so memory stays ``O(chunk · M)`` whatever the catalogue.
Excluded items (a user's history) are set to ``-inf`` through a padded list of (row, item) pairs
(one compile per power-of-two pair count), then ``jax.lax.top_k`` gives the best ``k`` in
descending score. Rows with fewer than ``k`` allowed items get shorter lists (``-inf`` entries
are dropped), never an excluded item.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator

import numpy as np

NEG_INF = -np.inf


def _bucket(n: int, minimum: int = 256) -> int:
    """The next power of two >= max(n, minimum): a small set of static shapes for jit."""
    return max(minimum, 1 << max(int(n) - 1, 0).bit_length())


def csr_take(offsets: np.ndarray, values: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The lists of ``rows`` (in that order) from CSR ``(offsets [R+1], values [N])``, as a new CSR."""
    starts = offsets[rows]
    lengths = offsets[rows + 1] - starts
    new_offsets = np.zeros(rows.size + 1, np.int64)
    np.cumsum(lengths, out=new_offsets[1:])
    index = np.arange(int(new_offsets[-1]), dtype=np.int64) - np.repeat(new_offsets[:-1], lengths) + np.repeat(starts, lengths)
    return new_offsets, values[index]


def chunk_pairs(
    offsets: np.ndarray, values: np.ndarray, rows: np.ndarray, n_columns: int
) -> tuple[np.ndarray, np.ndarray]:
    """(position in chunk, column) of every listed item of ``rows``, padded to a bucket size.

    ``offsets [R+1]``, ``values [N]``: a CSR list per row (column ids ``0..n_columns-1``; values
    outside that range are ignored). Padding pairs point at column ``n_columns`` (dropped on scatter).
    """
    sub_offsets, column = csr_take(offsets, values, rows)
    position = np.repeat(np.arange(rows.size, dtype=np.int32), np.diff(sub_offsets))
    column = column.astype(np.int32)
    keep = (column >= 0) & (column < n_columns)
    position, column = position[keep], column[keep]
    size = _bucket(position.size)
    pad_row = np.zeros(size, np.int32)
    pad_col = np.full(size, n_columns, np.int32)
    pad_row[: position.size] = position
    pad_col[: column.size] = column
    return pad_row, pad_col


@functools.cache
def _masked_top_k_fn():
    """Built on first use so importing this module does not import JAX."""
    import jax
    import jax.numpy as jnp

    @functools.partial(jax.jit, static_argnames=("k",))
    def masked_top_k(queries, keys, mask_rows, mask_cols, k: int):
        scores = queries @ keys.T
        scores = scores.at[mask_rows, mask_cols].set(-jnp.inf, mode="drop")
        return jax.lax.top_k(scores, k)

    return masked_top_k


def masked_top_k(queries, keys, mask_rows, mask_cols, k: int):
    """``top_k(queries [C, d] @ keys [M, d].T)`` with the (mask_rows, mask_cols) pairs at ``-inf``.

    Jitted; returns ``(scores [C, k], indices [C, k])`` in descending score.
    """
    return _masked_top_k_fn()(queries, keys, mask_rows, mask_cols, k)


def iter_chunks(n: int, chunk: int) -> Iterator[np.ndarray]:
    """Index arrays ``[chunk]`` covering 0..n-1; the last one padded by repeating its final index."""
    for start in range(0, n, chunk):
        index = np.arange(start, min(start + chunk, n))
        if index.size < chunk:
            index = np.concatenate([index, np.full(chunk - index.size, index[-1])])
        yield index


def top_k_items(
    query_embeddings: np.ndarray,
    item_embeddings: np.ndarray,
    exclude_offsets: np.ndarray,
    exclude_values: np.ndarray,
    k: int,
    chunk: int = 1024,
    progress: Callable[[int], None] | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The ``k`` best items per query row, excluded items never returned.

    ``query_embeddings [R, d]`` (one row per query, e.g. the user of each dataset row);
    ``item_embeddings [M, d]`` (only the candidate items, e.g. one domain's block);
    ``exclude_offsets [R+1]``, ``exclude_values [N]``: per-row CSR of excluded item indices 0..M-1.
    Returns ``(offsets int64[R+1], items int32[...], scores float32[...])``: per row at most ``k``
    items in descending score (fewer only when fewer than ``k`` items are allowed).
    """
    import jax.numpy as jnp

    n_rows, n_items = query_embeddings.shape[0], item_embeddings.shape[0]
    k_eff = min(int(k), n_items)
    keys = jnp.asarray(item_embeddings, jnp.float32)
    out_items = np.zeros((n_rows, k_eff), np.int32)
    out_scores = np.full((n_rows, k_eff), NEG_INF, np.float32)
    chunk = max(1, min(chunk, n_rows)) if n_rows else 1
    for index in iter_chunks(n_rows, chunk):
        mask_rows, mask_cols = chunk_pairs(exclude_offsets, exclude_values, index, n_items)
        scores, items = masked_top_k(jnp.asarray(query_embeddings[index], jnp.float32), keys, mask_rows, mask_cols, k_eff)
        out_items[index] = np.asarray(items)
        out_scores[index] = np.asarray(scores)
        if progress is not None:
            progress(int(np.unique(index).size))
    valid = np.isfinite(out_scores)
    offsets = np.zeros(n_rows + 1, np.int64)
    np.cumsum(valid.sum(axis=1), out=offsets[1:])
    return offsets, out_items[valid], out_scores[valid]


def random_items(
    n_items: int,
    exclude_offsets: np.ndarray,
    exclude_values: np.ndarray,
    k: int,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray]:
    """``k`` distinct items per row drawn uniformly from ``0..n_items-1`` minus the row's excluded ones.

    The "w/o PSG" ablation. Returns CSR ``(offsets int64[R+1], items int32[...])``; a row gets fewer
    than ``k`` items only when fewer are allowed. Vectorised over rows (oversample, drop repeats and
    excluded items); rows left short are completed one by one.
    """
    n_rows = exclude_offsets.size - 1
    draw = 2 * k + 8
    candidates = rng.integers(0, n_items, size=(n_rows, draw))
    rows = np.repeat(np.arange(n_rows), np.diff(exclude_offsets))
    excluded = np.sort(rows.astype(np.int64) * n_items + exclude_values)
    keys = np.arange(n_rows, dtype=np.int64)[:, None] * n_items + candidates
    position = np.searchsorted(excluded, keys)
    hit = excluded[np.minimum(position, max(excluded.size - 1, 0))] == keys if excluded.size else np.zeros_like(keys, bool)
    # drop repeats within a row: keep the first occurrence
    order = np.argsort(candidates, axis=1, kind="stable")
    sorted_c = np.take_along_axis(candidates, order, axis=1)
    repeat_sorted = np.zeros_like(sorted_c, bool)
    repeat_sorted[:, 1:] = sorted_c[:, 1:] == sorted_c[:, :-1]
    repeat = np.zeros_like(repeat_sorted)
    np.put_along_axis(repeat, order, repeat_sorted, axis=1)
    good = ~hit & ~repeat
    rank = np.cumsum(good, axis=1)
    take = good & (rank <= k)
    counts = take.sum(axis=1)
    lists = [candidates[r][take[r]] for r in range(n_rows)] if n_rows else []
    for r in np.flatnonzero(counts < k):
        allowed = np.setdiff1d(np.arange(n_items), exclude_values[exclude_offsets[r] : exclude_offsets[r + 1]])
        lists[r] = rng.permutation(allowed)[: min(k, allowed.size)]
    offsets = np.zeros(n_rows + 1, np.int64)
    np.cumsum([len(x) for x in lists], out=offsets[1:])
    values = np.concatenate(lists).astype(np.int32) if lists else np.zeros(0, np.int32)
    return offsets, values


def ranking_metrics(
    user_embeddings: np.ndarray,
    item_embeddings: np.ndarray,
    train_offsets: np.ndarray,
    train_items: np.ndarray,
    test_offsets: np.ndarray,
    test_items: np.ndarray,
    k: int = 20,
    chunk: int = 1024,
) -> dict[str, float]:
    """LightGCN's Recall@k and NDCG@k over users with held-out items, training items masked.

    ``user_embeddings [U, d]``, ``item_embeddings [I, d]``; per-user CSR of training and held-out
    items. Recall = hits / |held-out|, NDCG with IDCG over ``min(|held-out|, k)`` positions; both
    averaged over users with at least one held-out item (as ``Procedure.Test`` does).
    """
    test_len = np.diff(test_offsets)
    users = np.flatnonzero(test_len > 0)
    if users.size == 0:
        return {f"recall@{k}": 0.0, f"ndcg@{k}": 0.0, "users": 0}
    sub_off, sub_val = csr_take(train_offsets, train_items, users)
    offsets, items, _ = top_k_items(user_embeddings[users], item_embeddings, sub_off, sub_val, k, chunk)
    n_items = item_embeddings.shape[0]
    row_of = np.repeat(np.arange(users.size), np.diff(offsets))
    rank = np.arange(items.size) - offsets[row_of]
    test_rows = np.repeat(np.arange(users.size), test_len[users])
    truth = np.sort(test_rows.astype(np.int64) * n_items + csr_take(test_offsets, test_items, users)[1])
    keys = row_of.astype(np.int64) * n_items + items
    hit = truth[np.minimum(np.searchsorted(truth, keys), truth.size - 1)] == keys
    discount = 1.0 / np.log2(rank + 2.0)
    hits = np.bincount(row_of, weights=hit, minlength=users.size)
    dcg = np.bincount(row_of, weights=hit * discount, minlength=users.size)
    ideal_len = np.minimum(test_len[users], k)
    ideal = np.cumsum(1.0 / np.log2(np.arange(k) + 2.0))[ideal_len - 1]
    return {
        f"recall@{k}": float(np.mean(hits / test_len[users])),
        f"ndcg@{k}": float(np.mean(dcg / ideal)),
        "users": int(users.size),
    }
