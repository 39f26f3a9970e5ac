"""LightGCN propagation and BPR training speed: JAX segment_sum vs BCOO vs scipy.sparse CSR.

For a synthetic graph of Cloth-Sport size (the authors' LightGCN files: 17,356 users, 24,046
items, 99,273 interactions) and one 10x larger, prints per-layer propagation time (median of
``--repeats``) and edges/s for the three implementations of the same ``Â E`` in the same process,
the scipy/JAX ratio, a full 3-layer propagation, and the BPR epoch time (one jitted ``lax.scan``
over all batches; for the large graph, ``--large-epoch-batches`` batches timed and scaled unless
``--full-large-epoch``). ``--json`` prints one JSON object as the last line.

    python benchmarks/bench_psg.py [--repeats 7] [--dim 64] [--json]
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np

from hardware import describe  # benchmarks/hardware.py

CLOTH_SPORT = {"users": 17356, "items": 24046, "interactions": 99273}


def synthetic_graph(users: int, items: int, interactions: int, seed: int = 0):
    """``interactions`` distinct pairs with power-law user activity and item popularity (Amazon-like)."""
    from imvae_jax.psg.graph import build_graph, unique_pairs

    rng = np.random.default_rng(seed)
    item_p = np.arange(1, items + 1, dtype=np.float64) ** -0.9
    user_p = np.arange(1, users + 1, dtype=np.float64) ** -0.6
    rng.shuffle(item_p)
    u = rng.choice(users, int(interactions * 1.6), p=user_p / user_p.sum())
    i = rng.choice(items, u.size, p=item_p / item_p.sum())
    u, i = unique_pairs(u, i, items)
    keep = np.sort(rng.permutation(u.size)[:interactions])
    u, i = u[keep], i[keep]
    return build_graph(u, i, users, items), u, i


def median_time(fn, repeats: int) -> float:
    fn()  # warm-up / compile
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def bench_size(name: str, users: int, items: int, interactions: int, args) -> dict:
    import jax
    import jax.numpy as jnp
    import scipy.sparse as sp
    from jax.experimental import sparse as jsparse

    from imvae_jax.psg.config import PSGConfig
    from imvae_jax.psg.graph import user_item_csr
    from imvae_jax.psg.lightgcn import _epoch_fn, propagate, sample_triples

    graph, u, i = synthetic_graph(users, items, interactions)
    n = graph.n_nodes
    rng = np.random.default_rng(1)
    emb = jnp.asarray(rng.standard_normal((n, args.dim)).astype(np.float32))
    rows, cols, weights = (jnp.asarray(a) for a in (graph.rows, graph.cols, graph.weights))

    one_layer = jax.jit(lambda e: jax.ops.segment_sum(weights[:, None] * e[cols], rows, num_segments=n, indices_are_sorted=True))
    bcoo = jsparse.BCOO((weights, jnp.stack([rows, cols], axis=1)), shape=(n, n), indices_sorted=True, unique_indices=True)
    bcoo_layer = jax.jit(lambda m, e: m @ e)
    csr = sp.csr_matrix((graph.weights, (graph.rows, graph.cols)), shape=(n, n))
    emb_np = np.asarray(emb)
    full = jax.jit(lambda e: propagate(e, rows, cols, weights, 3))

    np.testing.assert_allclose(np.asarray(one_layer(emb)), csr @ emb_np, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(np.asarray(bcoo_layer(bcoo, emb)), csr @ emb_np, rtol=1e-4, atol=1e-5)

    t_seg = median_time(lambda: one_layer(emb).block_until_ready(), args.repeats)
    t_bcoo = median_time(lambda: bcoo_layer(bcoo, emb).block_until_ready(), args.repeats)
    t_csr = median_time(lambda: csr @ emb_np, args.repeats)
    t_full = median_time(lambda: full(emb).block_until_ready(), args.repeats)

    # BPR epoch
    offsets, pos_items = user_item_csr(u, i, users, items)
    n_train = int(pos_items.size)
    cfg = PSGConfig(dim=args.dim)
    optimizer, epoch_fn = _epoch_fn(users, cfg.layers, cfg.weight_decay, cfg.lr)
    n_batches = -(-n_train // cfg.batch_size)
    timed_batches = n_batches if (name == "cloth_sport" or args.full_large_epoch) else min(n_batches, args.large_epoch_batches)
    triples = sample_triples(np.random.default_rng(2), offsets, pos_items, items, timed_batches * cfg.batch_size)
    batches = [jnp.asarray(a.reshape(timed_batches, cfg.batch_size)) for a in triples]
    mask = jnp.ones((timed_batches, cfg.batch_size), jnp.float32)
    table = jnp.asarray(0.1 * rng.standard_normal((n, args.dim)).astype(np.float32))
    state = optimizer.init(table)

    epoch_times = []
    for repeat in range(1 + args.epoch_repeats):
        start = time.perf_counter()
        table, state, losses, _ = epoch_fn(table, state, rows, cols, weights, *batches, mask)
        losses.block_until_ready()
        if repeat:  # the first call compiles
            epoch_times.append(time.perf_counter() - start)
    t_epoch_measured = float(np.median(epoch_times))
    t_epoch = t_epoch_measured * n_batches / timed_batches
    edges = graph.n_edges
    return {
        "graph": name,
        "users": users,
        "items": items,
        "interactions": edges // 2,
        "directed_edges": edges,
        "dim": args.dim,
        "layer_ms_segment_sum": 1e3 * t_seg,
        "layer_ms_bcoo": 1e3 * t_bcoo,
        "layer_ms_scipy_csr": 1e3 * t_csr,
        "edges_per_s_segment_sum": edges / t_seg,
        "edges_per_s_bcoo": edges / t_bcoo,
        "edges_per_s_scipy_csr": edges / t_csr,
        "scipy_over_segment_sum": t_csr / t_seg,
        "bcoo_over_segment_sum": t_bcoo / t_seg,
        "propagation_3_layers_ms": 1e3 * t_full,
        "bpr_batches_per_epoch": n_batches,
        "bpr_batches_timed": timed_batches,
        "bpr_epoch_s": t_epoch,
        "bpr_epoch_extrapolated": timed_batches < n_batches,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=7, help="timings per figure (median reported)")
    parser.add_argument("--epoch-repeats", type=int, default=3, help="timed BPR epochs after the compiling one")
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--scale", type=int, default=10, help="size factor of the large graph")
    parser.add_argument("--large-epoch-batches", type=int, default=40, help="batches timed on the large graph")
    parser.add_argument("--full-large-epoch", action="store_true", help="time the whole large-graph epoch")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)

    sizes = [("cloth_sport", CLOTH_SPORT), (f"cloth_sport_x{args.scale}", {k: v * args.scale for k, v in CLOTH_SPORT.items()})]
    results = []
    for name, size in sizes:
        r = bench_size(name, size["users"], size["items"], size["interactions"], args)
        results.append(r)
        print(
            f"{name}: {r['users']} users, {r['items']} items, {r['directed_edges']} directed edges, d={r['dim']}\n"
            f"  per layer  segment_sum {r['layer_ms_segment_sum']:8.2f} ms ({r['edges_per_s_segment_sum'] / 1e6:7.1f} M edges/s)"
            f" | BCOO {r['layer_ms_bcoo']:8.2f} ms ({r['edges_per_s_bcoo'] / 1e6:7.1f} M/s)"
            f" | scipy CSR {r['layer_ms_scipy_csr']:8.2f} ms ({r['edges_per_s_scipy_csr'] / 1e6:7.1f} M/s)\n"
            f"  scipy/segment_sum {r['scipy_over_segment_sum']:.2f}x, BCOO/segment_sum {r['bcoo_over_segment_sum']:.2f}x;"
            f" 3-layer propagation {r['propagation_3_layers_ms']:.2f} ms\n"
            f"  BPR epoch {r['bpr_epoch_s']:.2f} s ({r['bpr_batches_per_epoch']} batches of 2048"
            f"{', extrapolated from ' + str(r['bpr_batches_timed']) if r['bpr_epoch_extrapolated'] else ''})",
            flush=True,
        )
    record = {
        "benchmark": "psg",
        "hardware": describe(),
        "results": results,
    }
    if args.json:
        print(json.dumps(record))
    return 0


if __name__ == "__main__":
    sys.exit(main())
