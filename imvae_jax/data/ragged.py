"""Ragged integer lists as ``(offsets int64[R+1], values int32[N])``, with vectorised row operations.

Every function here is pure numpy without a Python loop per row.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

Ragged = tuple[np.ndarray, np.ndarray]


def empty(n_rows: int) -> Ragged:
    """``n_rows`` empty lists."""
    return np.zeros(n_rows + 1, np.int64), np.zeros(0, np.int32)


def from_lists(lists: Sequence[Sequence[int]]) -> Ragged:
    """Python lists -> ragged (for tests and small inputs)."""
    lengths = np.fromiter((len(x) for x in lists), np.int64, count=len(lists))
    offsets = np.zeros(len(lists) + 1, np.int64)
    np.cumsum(lengths, out=offsets[1:])
    values = np.fromiter((v for x in lists for v in x), np.int64, count=int(offsets[-1]))
    return offsets, values.astype(np.int32)


def to_lists(ragged: Ragged) -> list[list[int]]:
    """Ragged -> Python lists (for tests and messages)."""
    offsets, values = ragged
    return [values[offsets[i] : offsets[i + 1]].tolist() for i in range(len(offsets) - 1)]


def lengths(ragged: Ragged) -> np.ndarray:
    """``[R]`` int64 list lengths."""
    return np.diff(ragged[0])


def row_ids(ragged: Ragged) -> np.ndarray:
    """``[N]`` the row of each value."""
    offsets = ragged[0]
    return np.repeat(np.arange(len(offsets) - 1, dtype=np.int64), np.diff(offsets))


def from_lengths(lengths_: np.ndarray) -> np.ndarray:
    """Offsets ``[R+1]`` from lengths ``[R]``."""
    offsets = np.zeros(len(lengths_) + 1, np.int64)
    np.cumsum(lengths_, out=offsets[1:])
    return offsets


def take(ragged: Ragged, rows: np.ndarray) -> Ragged:
    """The lists of ``rows`` (int indices, any order, repeats allowed)."""
    offsets, values = ragged
    rows = np.asarray(rows, np.int64)
    starts = offsets[rows]
    counts = offsets[rows + 1] - starts
    new_offsets = from_lengths(counts)
    index = np.repeat(starts - new_offsets[:-1], counts) + np.arange(new_offsets[-1], dtype=np.int64)
    return new_offsets, values[index]


def compress(ragged: Ragged, keep: np.ndarray) -> Ragged:
    """Keep the values where ``keep`` ([N] bool) is true, row structure preserved."""
    offsets, values = ragged
    keep = np.asarray(keep, bool)
    kept = np.zeros(len(values) + 1, np.int64)
    np.cumsum(keep, out=kept[1:])
    return kept[offsets], values[keep]


def last(ragged: Ragged) -> np.ndarray:
    """The last value of each (non-empty) list, ``[R]``."""
    offsets, values = ragged
    return values[offsets[1:] - 1]


def drop_last(ragged: Ragged) -> Ragged:
    """Each (non-empty) list without its last value."""
    offsets, values = ragged
    keep = np.ones(len(values), bool)
    keep[offsets[1:][np.diff(offsets) > 0] - 1] = False
    return compress(ragged, keep)


def append(ragged: Ragged, items: np.ndarray, where: np.ndarray | None = None) -> Ragged:
    """Append ``items[r]`` to each list (only where ``where[r]`` if given)."""
    offsets, values = ragged
    n = len(offsets) - 1
    add = np.ones(n, bool) if where is None else np.asarray(where, bool)
    new_lengths = np.diff(offsets) + add
    new_offsets = from_lengths(new_lengths)
    out = np.zeros(new_offsets[-1], np.int32)
    old_rows = row_ids(ragged)
    out[new_offsets[old_rows] + (np.arange(len(values)) - offsets[old_rows])] = values
    out[new_offsets[1:][add] - 1] = np.asarray(items)[add]
    return new_offsets, out


def clear(ragged: Ragged, rows_mask: np.ndarray) -> Ragged:
    """Empty the lists where ``rows_mask`` ([R] bool) is true."""
    return compress(ragged, ~np.asarray(rows_mask, bool)[row_ids(ragged)])


def concat(parts: Sequence[Ragged]) -> Ragged:
    """Stack row blocks."""
    offsets = [np.zeros(1, np.int64)]
    base = 0
    for off, _ in parts:
        offsets.append(off[1:] + base)
        base += int(off[-1])
    values = np.concatenate([v for _, v in parts]) if parts else np.zeros(0, np.int32)
    return np.concatenate(offsets), values.astype(np.int32)


def contains(ragged: Ragged, items: np.ndarray) -> np.ndarray:
    """``[R]`` whether list r holds ``items[r]``."""
    offsets, values = ragged
    rows = row_ids(ragged)
    hit = values == np.asarray(items)[rows]
    return np.bincount(rows[hit], minlength=len(offsets) - 1) > 0


def pair_keys(rows: np.ndarray, items: np.ndarray, width: int) -> np.ndarray:
    """int64 keys ``row * width + item`` (``width`` > every id)."""
    return rows.astype(np.int64) * width + items.astype(np.int64)


def isin_pairs(query_rows: np.ndarray, query_items: np.ndarray, sorted_keys: np.ndarray, width: int) -> np.ndarray:
    """Whether each (row, item) query is in ``sorted_keys`` (made by :func:`pair_keys`, sorted)."""
    query = pair_keys(query_rows, query_items, width)
    if sorted_keys.size == 0:
        return np.zeros(query.shape, bool)
    pos = np.minimum(np.searchsorted(sorted_keys, query), sorted_keys.size - 1)
    return sorted_keys[pos] == query


def where(condition: np.ndarray, a: Ragged, b: Ragged) -> Ragged:
    """Row r from ``a`` where ``condition[r]``, else from ``b`` (both ``[R]`` rows)."""
    condition = np.asarray(condition, bool)
    offsets = from_lengths(np.where(condition, lengths(a), lengths(b)))
    values = np.zeros(offsets[-1], np.int32)
    for source, pick in ((a, condition), (b, ~condition)):
        rows = row_ids(source)
        keep = pick[rows]
        position = np.arange(len(source[1]))[keep] - source[0][rows[keep]]
        values[offsets[rows[keep]] + position] = source[1][keep]
    return offsets, values
