"""LightGCN propagation and BPR training speed: the library's bucketed ELL vs segment_sum vs BCOO vs scipy CSR.

For a synthetic graph of Cloth-Sport size (the authors' LightGCN files: 17,356 users, 24,046
items, 99,273 interactions) and one 10x larger, prints one layer ``Â E`` (median of ``--repeats``
interleaved rounds, every graph array a jit argument) and edges/s for four implementations in the
same process: the library's (``imvae_jax.psg.propagation``, degree-bucketed ELL), the previous
library formulation (gather + sorted ``segment_sum``), ``jax.experimental.sparse`` BCOO and
``scipy.sparse`` CSR (single-threaded); the scipy/library ratio; the 3-layer ``propagate``; and
the BPR epoch time of the library and of the previous formulation (one jitted ``lax.scan`` over
all batches, checked to give the same table; for the large graph, ``--large-epoch-batches``
batches timed and scaled unless ``--full-large-epoch``). Prints whether malloc huge pages were
active (``imvae_jax.runtime``; ``IMVAE_HUGE_PAGES=0`` measures without). ``--json`` prints one
JSON object as the last line.

    python benchmarks/bench_psg.py [--repeats 9] [--epoch-repeats 2] [--large-epoch-batches 5] [--json]
"""

from __future__ import annotations

import argparse
import functools
import json
import sys
import time

import numpy as np

from hardware import describe  # benchmarks/hardware.py

from imvae_jax.runtime import huge_pages_active, transparent_huge_pages

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


def median_time(fn, repeats: int, warm: bool = True) -> float:
    if warm:
        fn()  # warm-up / compile
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def segment_sum_layer(e, rows, cols, weights):
    """The previous library formulation (reference): gather + sorted ``segment_sum``."""
    import jax

    return jax.ops.segment_sum(weights[:, None] * e[cols], rows, num_segments=e.shape[0], indices_are_sorted=True)


def segment_sum_bpr_loss(table, rows, cols, weights, users, positives, negatives, mask, *, n_users, layers, decay):
    """The previous ``bpr_loss`` (autodiff through gather + segment_sum), for the epoch comparison."""
    import jax
    import jax.numpy as jnp

    layer, total = table, table
    for _ in range(layers):
        layer = segment_sum_layer(layer, rows, cols, weights)
        total = total + layer
    final = total / (layers + 1)
    u, p, n = final[users], final[positives + n_users], final[negatives + n_users]
    count = jnp.maximum(jnp.sum(mask), 1.0)
    bpr = jnp.sum(mask * jax.nn.softplus(jnp.sum(u * n, -1) - jnp.sum(u * p, -1))) / count
    ego = table[users] ** 2 + table[positives + n_users] ** 2 + table[negatives + n_users] ** 2
    return bpr + decay * 0.5 * jnp.sum(mask[:, None] * ego) / count, bpr


def segment_sum_epoch_fn(n_users, layers, decay, lr):
    import jax
    import optax

    optimizer = optax.adam(lr)
    grad_fn = jax.value_and_grad(
        functools.partial(segment_sum_bpr_loss, n_users=n_users, layers=layers, decay=decay), has_aux=True
    )

    def epoch(table, state, rows, cols, weights, users, positives, negatives, mask):
        def step(carry, batch):
            table, state = carry
            (loss, bpr), grads = grad_fn(table, rows, cols, weights, *batch)
            updates, state = optimizer.update(grads, state, table)
            return (optax.apply_updates(table, updates), state), (loss, bpr)

        (table, state), (losses, bprs) = jax.lax.scan(step, (table, state), (users, positives, negatives, mask))
        return table, state, losses, bprs

    return optimizer, jax.jit(epoch, donate_argnums=(0, 1))


def time_epochs(run, table, state, repeats: int) -> float:
    """Median seconds of ``repeats`` calls of ``run(table, state) -> (table, state, losses)`` after a compiling one."""
    times = []
    for repeat in range(1 + repeats):
        start = time.perf_counter()
        table, state, losses = run(table, state)
        losses.block_until_ready()
        if repeat:
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
    from imvae_jax.psg.propagation import apply_layer, build_layout

    graph, u, i = synthetic_graph(users, items, interactions)
    n = graph.n_nodes
    rng = np.random.default_rng(1)
    emb_np = rng.standard_normal((n, args.dim)).astype(np.float32)
    emb = jnp.asarray(emb_np)
    rows, cols, weights = (jnp.asarray(a) for a in (graph.rows, graph.cols, graph.weights))
    started = time.perf_counter()
    layout = build_layout(graph, args.width).device_put()
    t_layout = time.perf_counter() - started
    emb_layout = emb[layout.order]  # the library chains layers in layout order

    # every graph array is a jit argument (as in training), never a constant folded into the program
    ell_layer = jax.jit(apply_layer)
    seg_layer = jax.jit(segment_sum_layer)
    bcoo = jsparse.BCOO((weights, jnp.stack([rows, cols], axis=1)), shape=(n, n), indices_sorted=True, unique_indices=True)
    bcoo_layer = jax.jit(lambda m, e: m @ e)
    csr = sp.csr_matrix((graph.weights, (graph.rows, graph.cols)), shape=(n, n))
    full = jax.jit(propagate, static_argnums=2)

    expected = csr @ emb_np
    np.testing.assert_allclose(np.asarray(ell_layer(emb_layout, layout))[np.asarray(layout.position)], expected, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(np.asarray(seg_layer(emb, rows, cols, weights)), expected, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(np.asarray(bcoo_layer(bcoo, emb)), expected, rtol=1e-4, atol=1e-5)

    # interleaved rounds, so that load from other processes hits every implementation alike
    layer_fns = {
        "bucketed_ell": lambda: ell_layer(emb_layout, layout).block_until_ready(),
        "segment_sum": lambda: seg_layer(emb, rows, cols, weights).block_until_ready(),
        "bcoo": lambda: bcoo_layer(bcoo, emb).block_until_ready(),
        "scipy_csr": lambda: csr @ emb_np,
        "full": lambda: full(emb, layout, 3).block_until_ready(),
    }
    samples = {key: [] for key in layer_fns}
    for fn in layer_fns.values():
        fn()  # warm-up / compile
    for _ in range(args.repeats):
        for key, fn in layer_fns.items():
            samples[key].append(median_time(fn, 1, warm=False))
    t = {key: float(np.median(v)) for key, v in samples.items()}

    # BPR epoch: the library's and the previous formulation's, same triples, same start
    offsets, pos_items = user_item_csr(u, i, users, items)
    n_train = int(pos_items.size)
    cfg = PSGConfig(dim=args.dim)
    n_batches = -(-n_train // cfg.batch_size)
    timed_batches = n_batches if (name == "cloth_sport" or args.full_large_epoch) else min(n_batches, args.large_epoch_batches)
    triples = sample_triples(np.random.default_rng(2), offsets, pos_items, items, timed_batches * cfg.batch_size)
    batches = [jnp.asarray(a.reshape(timed_batches, cfg.batch_size)) for a in triples]
    mask = jnp.ones((timed_batches, cfg.batch_size), jnp.float32)
    table0 = 0.1 * rng.standard_normal((n, args.dim)).astype(np.float32)

    optimizer, epoch_fn = _epoch_fn(users, cfg.layers, cfg.weight_decay, cfg.lr)
    old_optimizer, old_epoch_fn = segment_sum_epoch_fn(users, cfg.layers, cfg.weight_decay, cfg.lr)

    def run_new(table, state):
        table, state, losses, _ = epoch_fn(table, state, layout, *batches, mask)
        return table, state, losses

    def run_old(table, state):
        table, state, losses, _ = old_epoch_fn(table, state, rows, cols, weights, *batches, mask)
        return table, state, losses

    # one epoch of each from the same start must agree (the same optimisation, another kernel)
    new_table = epoch_fn(jnp.asarray(table0), optimizer.init(jnp.asarray(table0)), layout, *batches, mask)[0]
    old_table = old_epoch_fn(jnp.asarray(table0), old_optimizer.init(jnp.asarray(table0)), rows, cols, weights, *batches, mask)[0]
    np.testing.assert_allclose(np.asarray(new_table), np.asarray(old_table), rtol=1e-3, atol=1e-5)

    t_epoch_new = time_epochs(run_new, jnp.asarray(table0), optimizer.init(jnp.asarray(table0)), args.epoch_repeats)
    t_epoch_old = time_epochs(run_old, jnp.asarray(table0), old_optimizer.init(jnp.asarray(table0)), args.epoch_repeats)
    scale = n_batches / timed_batches
    edges = graph.n_edges
    return {
        "graph": name,
        "users": users,
        "items": items,
        "interactions": edges // 2,
        "directed_edges": edges,
        "dim": args.dim,
        "layout_width": args.width,
        "layout_head_nodes": layout.n_head,
        "layout_build_s": t_layout,
        "layer_ms_bucketed_ell": 1e3 * t["bucketed_ell"],
        "layer_ms_segment_sum": 1e3 * t["segment_sum"],
        "layer_ms_bcoo": 1e3 * t["bcoo"],
        "layer_ms_scipy_csr": 1e3 * t["scipy_csr"],
        "edges_per_s_bucketed_ell": edges / t["bucketed_ell"],
        "edges_per_s_segment_sum": edges / t["segment_sum"],
        "edges_per_s_bcoo": edges / t["bcoo"],
        "edges_per_s_scipy_csr": edges / t["scipy_csr"],
        "scipy_over_bucketed_ell": t["scipy_csr"] / t["bucketed_ell"],
        "scipy_over_segment_sum": t["scipy_csr"] / t["segment_sum"],
        "propagation_3_layers_ms": 1e3 * t["full"],
        "bpr_batches_per_epoch": n_batches,
        "bpr_batches_timed": timed_batches,
        "bpr_epoch_s": t_epoch_new * scale,
        "bpr_epoch_s_segment_sum": t_epoch_old * scale,
        "bpr_epoch_extrapolated": timed_batches < n_batches,
    }


def main(argv: list[str] | None = None) -> int:
    from imvae_jax.psg.propagation import DEFAULT_WIDTH

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=7, help="timings per figure (median reported)")
    parser.add_argument("--epoch-repeats", type=int, default=3, help="timed BPR epochs after the compiling one")
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--width", type=int, default=DEFAULT_WIDTH, help="bucketed-ELL width (the library's default)")
    parser.add_argument("--scale", type=int, default=10, help="size factor of the large graph")
    parser.add_argument("--large-epoch-batches", type=int, default=40, help="batches timed on the large graph")
    parser.add_argument("--full-large-epoch", action="store_true", help="time the whole large-graph epoch")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    print(
        f"malloc huge pages (GLIBC_TUNABLES=glibc.malloc.hugetlb=1): {'on' if huge_pages_active() else 'off'};"
        f" kernel transparent huge pages: {transparent_huge_pages()}",
        flush=True,
    )

    sizes = [("cloth_sport", CLOTH_SPORT), (f"cloth_sport_x{args.scale}", {k: v * args.scale for k, v in CLOTH_SPORT.items()})]
    results = []
    for name, size in sizes:
        r = bench_size(name, size["users"], size["items"], size["interactions"], args)
        results.append(r)
        print(
            f"{name}: {r['users']} users, {r['items']} items, {r['directed_edges']} directed edges, d={r['dim']}"
            f" (layout: width {r['layout_width']}, {r['layout_head_nodes']} head nodes, built in {r['layout_build_s']:.2f} s)\n"
            f"  one layer Â E, median ms (M edges/s):\n"
            f"    bucketed ELL (library)        {r['layer_ms_bucketed_ell']:8.2f} ({r['edges_per_s_bucketed_ell'] / 1e6:7.1f})\n"
            f"    segment_sum (previous)        {r['layer_ms_segment_sum']:8.2f} ({r['edges_per_s_segment_sum'] / 1e6:7.1f})\n"
            f"    BCOO (jax.experimental)       {r['layer_ms_bcoo']:8.2f} ({r['edges_per_s_bcoo'] / 1e6:7.1f})\n"
            f"    scipy CSR                     {r['layer_ms_scipy_csr']:8.2f} ({r['edges_per_s_scipy_csr'] / 1e6:7.1f})\n"
            f"  scipy time / library time {r['scipy_over_bucketed_ell']:.2f}x (previous segment_sum:"
            f" {r['scipy_over_segment_sum']:.2f}x); 3-layer propagate() {r['propagation_3_layers_ms']:.2f} ms\n"
            f"  BPR epoch {r['bpr_epoch_s']:.2f} s library, {r['bpr_epoch_s_segment_sum']:.2f} s previous segment_sum"
            f" ({r['bpr_batches_per_epoch']} batches of 2048"
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
    from imvae_jax.runtime import use_huge_pages

    use_huge_pages()  # huge pages for XLA's per-call temporaries; IMVAE_HUGE_PAGES=0 measures without
    sys.exit(main())
