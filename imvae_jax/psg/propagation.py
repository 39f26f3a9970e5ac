"""One LightGCN layer ``Â E`` on the CPU without scatter: degree-bucketed ELL in a permuted node order.

Why this layout (measured with ``python benchmarks/bench_psg.py``, see ``lightgcn.py``): on XLA's
CPU backend a gather feeding an elementwise sum is *fused*, so ``Σ_k w_k · E[c_k]`` over ``k <
w`` runs as one loop that never writes the ``[E, d]`` messages to memory, whereas
``segment_sum(weights · E[cols])`` materialises them (about 51 MB per layer at Cloth-Sport size,
d = 64) and then runs a serial scatter-add. So nodes are grouped by in-degree:

* a node of degree ``w <= width`` sits in bucket ``w``: ``cols [n_w, w]``, ``weights [n_w, w]``
  hold its ``w`` neighbours exactly (no padding); the bucket's output rows are
  ``Σ_k weights[:, k] · E[cols[:, k]]``, one fused loop per bucket;
* a node of degree ``> width`` (the power-law head: a few thousand nodes holding about 40% of the
  edges) has its neighbour list cut into chunks of ``width`` (the last one zero-weight padded);
  each chunk is a fused row as above and a sorted ``segment_sum`` adds the ``≈ E_head / width``
  chunk rows per node.

Bucket outputs are written one after the other into the output (in place), so a layer's output
rows come in *layout order* (degree-0 nodes,
then degree 1, 2, …, then the head), and neighbour ids are stored as layout positions: layers are
chained in layout order and only the first input and the last output are permuted. Memory is
``O(E + N·d)`` (the padding is below one chunk per head node); no dense ``Â``.

Gradient: the layer is linear and ``Â`` is symmetric (``D^-1/2 A D^-1/2`` of an undirected
graph; :func:`build_layout` checks it), so ``Âᵀ g = Â g`` and the custom VJP runs the same fused
kernel on the cotangent instead of autodiff's scatter-adds.
"""

from __future__ import annotations

import dataclasses
import functools

import numpy as np

from imvae_jax.psg.graph import Graph

DEFAULT_WIDTH = 16


@dataclasses.dataclass(frozen=True)
class Layout:
    """A graph's normalised adjacency ready for :func:`apply_layer` (a JAX pytree; jit argument).

    ``order [N]``: node at each layout position; ``position [N]``: layout position of each node.
    ``buckets``: ``(cols [n_w, w] int32, weights [n_w, w] float32)`` per non-empty degree
    ``w = 1..width``, neighbour ids as layout positions. ``chunk_cols / chunk_weights
    [C, width]``, ``chunk_owner [C]`` (sorted, ``0..n_head-1``): the head nodes' neighbour lists.
    ``n_isolated`` degree-0 nodes come first, the ``n_head`` head nodes last (static fields).
    """

    order: np.ndarray
    position: np.ndarray
    buckets: tuple[tuple[np.ndarray, np.ndarray], ...]
    chunk_cols: np.ndarray
    chunk_weights: np.ndarray
    chunk_owner: np.ndarray
    n_isolated: int
    n_head: int

    @property
    def n_nodes(self) -> int:
        return int(self.order.shape[0])

    def device_put(self) -> Layout:
        """The same layout with every array on the default JAX device."""
        import jax

        return jax.device_put(self)


def _register() -> None:
    import jax

    jax.tree_util.register_dataclass(
        Layout,
        data_fields=["order", "position", "buckets", "chunk_cols", "chunk_weights", "chunk_owner"],
        meta_fields=["n_isolated", "n_head"],
    )


_register()


def build_layout(graph: Graph, width: int = DEFAULT_WIDTH) -> Layout:
    """The bucketed layout of ``graph`` (numpy arrays; ``graph`` must be symmetric, as ``build_graph`` makes it)."""
    if width < 1:
        raise ValueError(f"width must be >= 1; got {width}")
    rows, cols, weights = (np.asarray(a) for a in (graph.rows, graph.cols, graph.weights))
    forward = np.lexsort((cols, rows))
    backward = np.lexsort((rows, cols))
    if not (
        np.array_equal(rows[forward], cols[backward])
        and np.array_equal(cols[forward], rows[backward])
        and np.array_equal(weights[forward], weights[backward])
    ):
        raise ValueError("the propagation's VJP assumes a symmetric adjacency (edges in both directions, equal weights)")
    rows, cols, weights = rows[forward], cols[forward], weights[forward]
    n = graph.n_nodes
    degree = np.bincount(rows, minlength=n)
    offsets = np.zeros(n + 1, np.int64)
    np.cumsum(degree, out=offsets[1:])
    group = np.minimum(degree, width + 1)  # width + 1: the head
    order = np.argsort(group, kind="stable")
    position = np.empty(n, np.int64)
    position[order] = np.arange(n)
    sorted_group = group[order]

    buckets = []
    for w in range(1, width + 1):
        nodes = order[sorted_group == w]
        if nodes.size:
            edge = offsets[nodes][:, None] + np.arange(w)[None, :]
            buckets.append((position[cols[edge]].astype(np.int32), weights[edge].astype(np.float32)))

    head = order[sorted_group == width + 1]
    chunks = -(-degree[head] // width)
    owner = np.repeat(np.arange(head.size), chunks)
    first_chunk = np.repeat(np.cumsum(chunks) - chunks, chunks)
    edge = (np.repeat(offsets[head], chunks) + width * (np.arange(owner.size) - first_chunk))[:, None] + np.arange(width)
    valid = edge < np.repeat(offsets[head + 1], chunks)[:, None]
    edge = np.where(valid, edge, 0)
    chunk_cols = np.where(valid, position[cols[edge]], 0).astype(np.int32)
    chunk_weights = np.where(valid, weights[edge], 0).astype(np.float32)
    return Layout(
        order=order.astype(np.int32),
        position=position.astype(np.int32),
        buckets=tuple(buckets),
        chunk_cols=chunk_cols,
        chunk_weights=chunk_weights,
        chunk_owner=owner.astype(np.int32),
        n_isolated=int((degree == 0).sum()),
        n_head=int(head.size),
    )


def _weighted_rows(x, cols, weights):
    """``Σ_k weights[:, k] · x[cols[:, k]]``, ``[R, d]``: written as a sum of column gathers so XLA fuses it."""
    total = weights[:, 0, None] * x[cols[:, 0]]
    for k in range(1, cols.shape[1]):
        total = total + weights[:, k, None] * x[cols[:, k]]
    return total


def _layer(x, layout: Layout):
    import jax
    import jax.numpy as jnp

    # each bucket's rows are written into the output in place (dynamic_update_slice at a static
    # offset): 35% faster than concatenating the buckets, which copies the whole output once more
    out = jnp.zeros_like(x)  # the degree-0 rows stay 0
    start = layout.n_isolated
    for cols, weights in layout.buckets:
        out = jax.lax.dynamic_update_slice(out, _weighted_rows(x, cols, weights), (start, 0))
        start += cols.shape[0]
    if layout.n_head:
        chunk_rows = _weighted_rows(x, layout.chunk_cols, layout.chunk_weights)
        head = jax.ops.segment_sum(chunk_rows, layout.chunk_owner, num_segments=layout.n_head, indices_are_sorted=True)
        out = jax.lax.dynamic_update_slice(out, head, (start, 0))
    return out


@functools.cache
def _layer_vjp():
    import jax

    @jax.custom_vjp
    def layer(x, layout):
        return _layer(x, layout)

    def forward(x, layout):
        return _layer(x, layout), layout

    def backward(layout, cotangent):  # Âᵀ = Â
        return _layer(cotangent, layout), None

    layer.defvjp(forward, backward)
    return layer


def apply_layer(x, layout: Layout):
    """``Â x`` for ``x [N, d]`` in layout order (rows permuted by ``layout.order``); differentiable in ``x``."""
    return _layer_vjp()(x, layout)


def layers_in_layout(x, layout: Layout, layers: int) -> list:
    """``[x, Â x, …, Â^K x]`` in layout order."""
    out = [x]
    for _ in range(layers):
        out.append(apply_layer(out[-1], layout))
    return out
