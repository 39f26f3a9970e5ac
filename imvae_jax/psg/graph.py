"""The joint user-item bipartite graph as sorted COO arrays with D^-1/2 A D^-1/2 weights.

Nodes: users ``0..U-1``, then items ``U..U+I-1`` (the items of both domains in one index space;
the caller decides the item layout). Each undirected interaction is stored twice (u->i and i->u),
edges sorted by (row, col), so ``segment_sum(..., indices_are_sorted=True)`` can aggregate by row.
No dense adjacency is ever built: memory is O(E).

Normalisation: ``w(r, c) = 1 / sqrt(deg(r) * deg(c))``. A node without edges (degree 0) simply has
no entries; its inverse square-root degree is defined as 0 (never inf/NaN), so its propagated
embedding is 0 on every layer after layer 0.
"""

from __future__ import annotations

import dataclasses

import numpy as np


@dataclasses.dataclass(frozen=True)
class Graph:
    """Symmetric-normalised bipartite adjacency in COO form.

    ``rows``, ``cols``: int32 ``[2E]`` node ids sorted by (row, col); ``weights``: float32 ``[2E]``;
    ``n_users``, ``n_items``: node counts (``n_nodes = n_users + n_items``).
    """

    rows: np.ndarray
    cols: np.ndarray
    weights: np.ndarray
    n_users: int
    n_items: int

    @property
    def n_nodes(self) -> int:
        return self.n_users + self.n_items

    @property
    def n_edges(self) -> int:
        """Directed entries (twice the number of distinct interactions)."""
        return int(self.rows.size)

    def degrees(self) -> np.ndarray:
        """``[n_nodes]`` int64 degree of every node."""
        return np.bincount(self.rows, minlength=self.n_nodes)

    def dense(self) -> np.ndarray:
        """The ``[N, N]`` float64 matrix (tests only; never call on a real graph)."""
        matrix = np.zeros((self.n_nodes, self.n_nodes))
        np.add.at(matrix, (self.rows, self.cols), self.weights)
        return matrix


def unique_pairs(users: np.ndarray, items: np.ndarray, n_items: int) -> tuple[np.ndarray, np.ndarray]:
    """Distinct (user, item) pairs sorted by (user, item)."""
    keys = np.unique(np.asarray(users, np.int64) * n_items + np.asarray(items, np.int64))
    return (keys // n_items).astype(np.int32), (keys % n_items).astype(np.int32)


def build_graph(users: np.ndarray, items: np.ndarray, n_users: int, n_items: int) -> Graph:
    """Graph from interaction arrays ``users [E]`` (0..U-1) and ``items [E]`` (0..I-1); duplicates merged."""
    users = np.asarray(users)
    items = np.asarray(items)
    if users.shape != items.shape or users.ndim != 1:
        raise ValueError(f"users {users.shape} and items {items.shape} must be equal-length 1-D arrays")
    if users.size and (users.min() < 0 or users.max() >= n_users):
        raise ValueError(f"user ids must lie in 0..{n_users - 1}; got {users.min()}..{users.max()}")
    if items.size and (items.min() < 0 or items.max() >= n_items):
        raise ValueError(f"item ids must lie in 0..{n_items - 1}; got {items.min()}..{items.max()}")
    u, i = unique_pairs(users, items, n_items)
    i_node = i.astype(np.int64) + n_users
    rows = np.concatenate([u.astype(np.int64), i_node])
    cols = np.concatenate([i_node, u.astype(np.int64)])
    order = np.lexsort((cols, rows))
    rows, cols = rows[order], cols[order]
    degree = np.bincount(rows, minlength=n_users + n_items).astype(np.float64)
    inv_sqrt = np.zeros_like(degree)
    np.divide(1.0, np.sqrt(degree), out=inv_sqrt, where=degree > 0)
    weights = (inv_sqrt[rows] * inv_sqrt[cols]).astype(np.float32)
    return Graph(rows.astype(np.int32), cols.astype(np.int32), weights, int(n_users), int(n_items))


def user_item_csr(users: np.ndarray, items: np.ndarray, n_users: int, n_items: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-user sorted distinct items as CSR ``(offsets int64[U+1], items int32[N])``."""
    u, i = unique_pairs(users, items, n_items)
    offsets = np.zeros(n_users + 1, np.int64)
    np.cumsum(np.bincount(u, minlength=n_users), out=offsets[1:])
    return offsets, i
