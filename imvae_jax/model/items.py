"""Item embeddings and scorers, shared by every variant.

One parameter array ``table [R, d]`` holds every item embedding, and two constant id maps
``index_x [n_items_x + 1]``, ``index_y [n_items_y + 1]`` turn a domain's contiguous ids
(0 = padding) into table rows:

* paper / sasrec: per-domain tables stored back to back, ``R = (n_x + 1) + (n_y + 1)``;
  X id i is row i, Y id j is row ``n_x + 1 + j`` (each domain's id 0 is its own padding row,
  never read unmasked).
* authors: the authors' joint table of ``R = 2N`` rows indexed by the *source* ids of the
  dataset's id maps (``meta['item_ids_x'][i]``), with the learned padding row ``N`` for id 0
  (spec 1.2, 2.1). Items present in both domains share one row, as in their code.

So candidates of mixed target domains are one gather, and ``d x R`` gradients are one scatter.
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from imvae_jax.model.layers import Dense, IdMap, lead, matmul, normal

DomainArg = int | str | jax.Array


def domain_index(domain: DomainArg) -> int | jax.Array:
    """``'x'``/``0`` -> 0, ``'y'``/``1`` -> 1; an array of 0/1 passes through."""
    if isinstance(domain, str):
        if domain not in ("x", "y"):
            raise ValueError(f"domain must be 'x' or 'y', got {domain!r}")
        return 0 if domain == "x" else 1
    if isinstance(domain, (int, np.integer)):
        if domain not in (0, 1):
            raise ValueError(f"domain must be 0 (X) or 1 (Y), got {domain}")
        return int(domain)
    return jnp.asarray(domain)


def per_domain_index(n_items_x: int, n_items_y: int) -> tuple[np.ndarray, np.ndarray, int]:
    """Id maps of back-to-back per-domain tables: ``(index_x, index_y, rows)``."""
    index_x = np.arange(n_items_x + 1, dtype=np.int32)
    index_y = np.arange(n_items_y + 1, dtype=np.int32) + (n_items_x + 1)
    return index_x, index_y, n_items_x + n_items_y + 2


def joint_index(
    source_ids: Sequence | np.ndarray, n_items: int, joint_size: int, name: str
) -> np.ndarray:
    """The authors' row of each contiguous id: ``source_ids[i]`` for i >= 1, ``joint_size`` for 0.

    ``source_ids`` is the dataset's ``meta['item_ids_<domain>']`` (index 0 = null). Ids must be
    integers in ``[0, joint_size)``: a clear error names the first bad entry.
    """
    ids = list(source_ids)
    if len(ids) != n_items + 1:
        raise ValueError(
            f"{name}: {len(ids)} entries, expected n_items + 1 = {n_items + 1} (index 0 = padding)"
        )
    out = np.empty(n_items + 1, dtype=np.int64)
    out[0] = joint_size
    for i, value in enumerate(ids[1:], start=1):
        try:
            out[i] = int(value)
        except (TypeError, ValueError):
            raise ValueError(f"{name}[{i}] = {value!r} is not an integer source item id") from None
        if not 0 <= out[i] < joint_size:
            raise ValueError(f"{name}[{i}] = {value!r} is outside the joint table [0, {joint_size})")
    return out.astype(np.int32)


class ItemTable(nnx.Module):
    """``table [R, d]`` plus the id maps of the two domains (see the module docstring)."""

    def __init__(
        self, index_x: np.ndarray, index_y: np.ndarray, rows: int, dim: int, *, std: float, rngs: nnx.Rngs
    ):
        self.table = nnx.Param(normal(std)(rngs.params(), (rows, dim)))
        self.index_x = IdMap(jnp.asarray(index_x, jnp.int32))
        self.index_y = IdMap(jnp.asarray(index_y, jnp.int32))
        self.n_items_x = int(len(index_x) - 1)
        self.n_items_y = int(len(index_y) - 1)

    def rows(self, ids: jax.Array, domain: DomainArg) -> jax.Array:
        """Table rows of domain ids (any shape). ``domain`` is 0/1/'x'/'y' or an array
        broadcastable to ``ids`` (e.g. ``[B, 1]`` per-row target domains)."""
        d = domain_index(domain)
        if isinstance(d, int):
            return (self.index_x if d == 0 else self.index_y)[...][ids]
        return jnp.where(d == 0, self.index_x[...][ids], self.index_y[...][ids])

    def __call__(self, ids: jax.Array, domain: DomainArg) -> jax.Array:
        """Embeddings ``[..., d]`` of domain ids ``[...]``."""
        return jnp.take(self.table[...], self.rows(ids, domain), axis=0)


class DotScorer(nnx.Module):
    """``h_u . e_v`` (paper 3.3.2); no parameters."""

    def __call__(self, h: jax.Array, items: jax.Array) -> jax.Array:
        """``h [B, d]``; ``items [B, C, d]`` or ``[C, d]`` -> logits ``[B, C]``."""
        if items.ndim == 2:
            return h @ items.T
        return jnp.einsum("bd,bcd->bc", h, items)


class MLPScorer(nnx.Module):
    """The authors' ``predictModule`` before its sigmoid: ``w2 . ReLU(W1 [h; e] + b1) + b2``.

    ``W1`` is stored whole (``[2d, h]``, PyTorch ``fc.0``) and applied as
    ``h W1[:d] + e W1[d:]`` so the user half is computed once per row, not per candidate.
    """

    def __init__(self, dim: int, hidden: int, *, rngs: nnx.Rngs):
        self.fc_in = Dense(2 * dim, hidden, rngs=rngs)
        self.fc_out = Dense(hidden, 1, rngs=rngs)

    def __call__(self, h: jax.Array, items: jax.Array) -> jax.Array:
        d = h.shape[-1]
        w = self.fc_in.kernel[...]
        user = h @ w[:d] + self.fc_in.bias[...][None]  # [B, h]
        item = lead(matmul(items, w[d:]), 3)  # [B or 1, C, h]
        hidden = jax.nn.relu(user[:, None, :] + item)
        return matmul(hidden, self.fc_out.kernel[...])[..., 0] + self.fc_out.bias[...][0]
