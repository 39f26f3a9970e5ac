"""Training-step and evaluation throughput of the jitted steps, with FLOP/s against the device's own
measured float32 matmul peak (a 2048^3 ``jnp.dot`` on CPU, 8192^3 on an accelerator), in one run.

Per variant (``paper``, ``authors``): random batches in the Batch contract's shapes at batch B
(512), d (128), T (20) history positions and T' (20) recalled items per domain (the authors
variant interleaves them into 40 positions), one training negative, 999 evaluation negatives;
the authors variant's joint item table has 2N rows (N = 24,507 as Cloth-Sport: 7,637,319
parameters). Compilation and 3 warm-up steps are excluded, and the training figure is the median
of windows of 5 steps (the machine may be shared); the data pipeline is excluded too (batches
are pre-placed), as in the authors' figure (spec section 11: 448 train samples/s, 449 evaluated users/s on 2 CPU cores).

FLOPs are the model's closed-form matmul counts (:mod:`imvae_jax.model.counting`):
``implementation`` = what this package computes; ``authors`` = what the authors' PyTorch model
computes for the same rows (177.9 MFLOP per training row, 125.5 MFLOP per evaluated row), the
like-for-like figure. The machine may be shared: the 1-minute load average is recorded.

    python benchmarks/bench_train.py [--variant authors|paper|both] [--batch 512] [--steps 20] [--window 5] [--warmup 3] [--micro-batch auto] [--profile DIR] [--json]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time

import numpy as np

from hardware import describe  # benchmarks/hardware.py

AUTHORS_N = 24_507  # Cloth-Sport's joint id space (largest source id + 1)
AUTHORS_PYTORCH = {"train_samples_per_s": 448.0, "eval_users_per_s": 449.0}  # spec section 11, 2-core CPU


def matmul_peak(size: int, repeats: int = 5, dtype: str = "float32") -> float:
    """Best-of FLOP/s of a ``size^3`` ``jnp.dot`` of ``dtype`` inputs (float32 accumulation)."""
    import jax
    import jax.numpy as jnp

    a = jax.random.normal(jax.random.key(0), (size, size), jnp.float32).astype(dtype)
    b = jax.random.normal(jax.random.key(1), (size, size), jnp.float32).astype(dtype)
    dot = jax.jit(lambda a, b: jnp.dot(a, b, preferred_element_type=jnp.float32))
    dot(a, b).block_until_ready()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        dot(a, b).block_until_ready()
        best = min(best, time.perf_counter() - start)
    return 2.0 * size**3 / best


SKIP_EVENTS = ("ThunkExecutor", "$", "Pjit", "SlinkyThreadPool", "TraceMe")


def profile_ops(run, steps: int, directory: str) -> dict:
    """Thread-milliseconds per step by XLA op kind, from a ``jax.profiler`` trace of ``run()``
    (which runs ``steps`` steps). Kinds are op names without their numeric suffix: on CPU
    ``ynn_fusion`` = matmuls with the element-wise work fused into them, ``*_fusion`` =
    element-wise loops, ``dot`` = matmuls XLA runs itself. The trace stays in ``directory``
    (open it in Perfetto or TensorBoard)."""
    import glob
    import gzip
    import re
    from collections import Counter

    import jax

    with jax.profiler.trace(directory, create_perfetto_trace=True):
        run()
    files = sorted(glob.glob(os.path.join(directory, "**", "*.trace.json.gz"), recursive=True), key=os.path.getmtime)
    if not files:
        raise RuntimeError(f"no *.trace.json.gz written under {directory}")
    with gzip.open(files[-1]) as handle:
        events = json.load(handle)["traceEvents"]
    kinds: Counter = Counter()
    threads = set()
    for event in events:
        if event.get("ph") == "X" and "dur" in event and not str(event["name"]).startswith(SKIP_EVENTS):
            kinds[re.sub(r"[.\d]+$", "", str(event["name"]))] += event["dur"] / 1e3 / steps
            threads.add((event.get("pid"), event.get("tid")))
    top = dict(kinds.most_common(12))
    top["other"] = sum(kinds.values()) - sum(top.values())
    return {"op_thread_ms_per_step": top, "busy_thread_ms_per_step": sum(kinds.values()), "threads_seen": len(threads)}


def random_batch(rng: np.random.Generator, batch: int, t: int, t_pseudo: int, n_x: int, n_y: int, candidates: int):
    """A batch in the data layer's contract with random ids and long-tailed lengths."""
    out = {}
    for name, n in (("x", n_x), ("y", n_y)):
        lengths = np.minimum(rng.integers(0, 2 * t, batch), t)
        seq = rng.integers(1, n + 1, (batch, t)).astype(np.int32)
        seq[np.arange(t)[None, :] < (t - lengths)[:, None]] = 0  # left padding
        out[f"seq_{name}"], out[f"len_{name}"] = seq, lengths.astype(np.int32)
        out[f"pseudo_{name}"] = rng.integers(1, n + 1, (batch, t_pseudo)).astype(np.int32)
    domain = rng.integers(0, 2, batch).astype(np.int32)
    n_target = np.where(domain == 0, n_x, n_y)[:, None]
    out["target_domain"] = domain
    out["candidates"] = (rng.random((batch, candidates)) * n_target).astype(np.int32) + 1
    cold = rng.random(batch) < 0.1
    out["cold_start"] = cold
    out["cold_start_kind"] = cold.astype(np.int32)
    out["tailed"] = rng.random(batch) < 0.5
    out["overlap"] = np.ones(batch, bool)
    out["user_id"] = np.arange(batch, dtype=np.int32)
    out["row"] = np.arange(batch, dtype=np.int32)
    out["mask"] = np.ones(batch, np.float32)
    return out


def bench_variant(variant: str, args: argparse.Namespace) -> dict:
    import jax

    from imvae_jax.config import Config
    from imvae_jax.losses.objective import make_objective
    from imvae_jax.model.counting import forward_flops, training_flops_per_row
    from imvae_jax.model.imvae import build_model
    from imvae_jax.train.state import create, make_optimizer, num_params
    from imvae_jax.train.step import Parallel, make_eval_step, make_train_step, micro_batch_count

    cfg = Config()
    model_cfg = dataclasses.replace(
        cfg.model, variant=variant, dim=args.dim, max_len=args.max_len, pseudo_len=args.pseudo_len
    )
    loss_cfg = dataclasses.replace(cfg.loss, recipe="authors" if variant == "authors" else cfg.loss.recipe)
    n_x = AUTHORS_N // 2
    n_y = AUTHORS_N - n_x
    source_x = [None, *range(n_x)]
    source_y = [None, *range(n_x, AUTHORS_N)]
    chunks = micro_batch_count(args.batch, args.micro_batch, jax.devices()[0].platform)
    parallel = Parallel(micro_batches=chunks)
    eval_parallel = Parallel()
    tx = make_optimizer(cfg.train)
    graphdef, state = create(
        lambda: build_model(model_cfg, n_items_x=n_x, n_items_y=n_y, seed=0, source_ids_x=source_x, source_ids_y=source_y),
        tx,
        seed=0,
    )
    params = num_params(state.params)
    state = parallel.put_replicated(state)
    rng = np.random.default_rng(0)
    batch_size = parallel.padded_size(args.batch)

    # ---- training
    train_step = make_train_step(graphdef, make_objective(loss_cfg), tx, parallel)
    train_batches = [
        parallel.put_batch(random_batch(rng, batch_size, args.max_len, args.pseudo_len, n_x, n_y, 2))
        for _ in range(min(args.steps, 4))
    ]
    start = time.perf_counter()
    state, metrics = train_step(state, train_batches[0])
    jax.block_until_ready(metrics)
    train_compile = time.perf_counter() - start
    for i in range(args.warmup):  # steady state: the allocator's first calls fault in fresh pages
        state, metrics = train_step(state, train_batches[i % len(train_batches)])
    jax.block_until_ready((state, metrics))
    windows = []  # seconds per step of each window of --window steps: a shared machine is noisy
    for first in range(0, args.steps, args.window):
        count = min(args.window, args.steps - first)
        start = time.perf_counter()
        for i in range(first, first + count):
            state, metrics = train_step(state, train_batches[i % len(train_batches)])
        jax.block_until_ready((state, metrics))
        windows.append((time.perf_counter() - start) / count)
    train_seconds = float(np.median(windows))
    loss = float(metrics["loss"])
    profile = None
    if args.profile:
        profile_steps = 3

        def run_profiled() -> None:
            nonlocal state, metrics
            for i in range(profile_steps):
                state, metrics = train_step(state, train_batches[i % len(train_batches)])
            jax.block_until_ready((state, metrics))

        profile = profile_ops(run_profiled, profile_steps, os.path.join(args.profile, variant))

    # ---- evaluation (target + 999 negatives in one pass)
    eval_step = make_eval_step(graphdef, eval_parallel, n_items=(n_x, n_y))
    eval_size = eval_parallel.padded_size(args.eval_batch)
    eval_batches = [
        eval_parallel.put_batch(random_batch(rng, eval_size, args.max_len, args.pseudo_len, n_x, n_y, 1 + args.negatives))
        for _ in range(2)
    ]
    start = time.perf_counter()
    jax.block_until_ready(eval_step(state.params, state.rest, eval_batches[0]))
    eval_compile = time.perf_counter() - start
    start = time.perf_counter()
    for i in range(args.eval_steps):
        out = eval_step(state.params, state.rest, eval_batches[i % 2])
    jax.block_until_ready(out)
    eval_seconds = (time.perf_counter() - start) / args.eval_steps

    train_rate = batch_size / train_seconds
    eval_rate = eval_size / eval_seconds
    flops = {
        "train_flops_per_row": training_flops_per_row(model_cfg, n_negatives=1),
        "eval_flops_per_row": forward_flops(model_cfg, n_negatives=args.negatives, training=False),
    }
    if variant == "authors":
        flops["authors_train_flops_per_row"] = training_flops_per_row(model_cfg, n_negatives=1, convention="authors")
        flops["authors_eval_flops_per_row"] = forward_flops(
            model_cfg, n_negatives=args.negatives, training=False, convention="authors"
        )
    result = {
        "variant": variant,
        "parameters": params,
        "batch": batch_size,
        "micro_batches": chunks,
        "eval_batch": eval_size,
        "train_samples_per_s": train_rate,
        "train_step_ms": 1e3 * train_seconds,
        "train_step_ms_windows": [1e3 * w for w in windows],
        "eval_users_per_s": eval_rate,
        "eval_batch_ms": 1e3 * eval_seconds,
        "train_compile_s": train_compile,
        "eval_compile_s": eval_compile,
        "loss_finite": bool(np.isfinite(loss)),
        **({"train_profile": profile} if profile else {}),
        **flops,
        "train_flop_per_s": flops["train_flops_per_row"] * train_rate,
        "eval_flop_per_s": flops["eval_flops_per_row"] * eval_rate,
    }
    if variant == "authors":
        result["authors_equiv_train_flop_per_s"] = flops["authors_train_flops_per_row"] * train_rate
        result["authors_equiv_eval_flop_per_s"] = flops["authors_eval_flops_per_row"] * eval_rate
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--variant", choices=("paper", "authors", "both"), default="both")
    parser.add_argument("--batch", type=int, default=512)
    parser.add_argument("--micro-batch", default="auto", type=lambda v: v if v == "auto" else int(v), help="rows per gradient-accumulation slice "
                        "(train.micro_batch; 'auto': 64 on CPU, the whole batch elsewhere)")
    parser.add_argument("--eval-batch", type=int, default=512)
    parser.add_argument("--dim", type=int, default=128)
    parser.add_argument("--max-len", type=int, default=20)
    parser.add_argument("--pseudo-len", type=int, default=20)
    parser.add_argument("--negatives", type=int, default=999)
    parser.add_argument("--steps", type=int, default=20, help="timed training steps")
    parser.add_argument("--window", type=int, default=5, help="steps per timing window (the median window counts)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed training steps after the compiling one")
    parser.add_argument("--eval-steps", type=int, default=6, help="timed evaluation batches")
    parser.add_argument("--peak-size", type=int, default=0, help="matmul size for the peak (0: 2048 CPU, 8192 else)")
    parser.add_argument("--profile", metavar="DIR", help="also trace 3 training steps into DIR/VARIANT and print "
                        "thread-ms per step by op kind")
    parser.add_argument("--json", action="store_true", help="print one JSON object as the last line")
    args = parser.parse_args(argv)

    import jax

    from imvae_jax.runtime import huge_pages_active, transparent_huge_pages

    devices = jax.devices()
    platform_name = devices[0].platform
    peak_size = args.peak_size or (2048 if platform_name == "cpu" else 8192)
    load_before = os.getloadavg()[0]
    peak = matmul_peak(peak_size)
    variants = ("paper", "authors") if args.variant == "both" else (args.variant,)
    results = {}
    for variant in variants:
        r = bench_variant(variant, args)
        r["train_share_of_peak"] = r["train_flop_per_s"] / peak
        r["eval_share_of_peak"] = r["eval_flop_per_s"] / peak
        if variant == "authors":
            r["authors_equiv_train_share_of_peak"] = r["authors_equiv_train_flop_per_s"] / peak
            r["authors_equiv_eval_share_of_peak"] = r["authors_equiv_eval_flop_per_s"] / peak
        results[variant] = r
    peak_after = matmul_peak(peak_size)
    peak_bf16 = matmul_peak(peak_size, dtype="bfloat16")  # context: what bf16 inputs could give
    load_after = os.getloadavg()[0]

    print(f"devices: {len(devices)} x {devices[0].device_kind} ({platform_name}); cpu_count {os.cpu_count()}; "
          f"load average {load_before:.1f} -> {load_after:.1f}; malloc huge pages {huge_pages_active()} "
          f"(THP {transparent_huge_pages()})")
    print(f"float32 matmul peak ({peak_size}^3 jnp.dot): {peak / 1e9:,.0f} GFLOP/s before, {peak_after / 1e9:,.0f} after; "
          f"bfloat16 inputs: {peak_bf16 / 1e9:,.0f} GFLOP/s (the shares below are of the float32 peak)")
    for variant, r in results.items():
        print(f"\n{variant}: {r['parameters']:,} parameters, batch {r['batch']} ({r['micro_batches']} micro-batches), "
              f"d={args.dim}, T={args.max_len}, T'={args.pseudo_len}")
        spread = ", ".join(f"{w:.0f}" for w in r["train_step_ms_windows"])
        print(f"  train: {r['train_samples_per_s']:,.0f} samples/s (median {r['train_step_ms']:.0f} ms/step of windows "
              f"[{spread}] ms; compile "
              f"{r['train_compile_s']:.1f} s); {r['train_flops_per_row'] / 1e6:.1f} MFLOP/row -> "
              f"{r['train_flop_per_s'] / 1e9:,.0f} GFLOP/s = {100 * r['train_share_of_peak']:.0f}% of peak")
        print(f"  eval:  {r['eval_users_per_s']:,.0f} users/s (1+{args.negatives} candidates; "
              f"{r['eval_batch_ms']:.0f} ms/batch of {r['eval_batch']}); {r['eval_flops_per_row'] / 1e6:.1f} MFLOP/row -> "
              f"{r['eval_flop_per_s'] / 1e9:,.0f} GFLOP/s = {100 * r['eval_share_of_peak']:.0f}% of peak")
        if "train_profile" in r:
            prof = r["train_profile"]
            print(f"  train-step profile ({prof['threads_seen']} threads, {prof['busy_thread_ms_per_step']:.0f} busy "
                  f"thread-ms per step of {r['train_step_ms']:.0f} ms wall; trace in {args.profile}/{variant}):")
            for kind, ms in prof["op_thread_ms_per_step"].items():
                print(f"    {ms:8.1f} thread-ms  {kind}")
        if variant == "authors":
            print(f"  authors-equivalent work ({r['authors_train_flops_per_row'] / 1e6:.1f} / "
                  f"{r['authors_eval_flops_per_row'] / 1e6:.1f} MFLOP per row): "
                  f"train {100 * r['authors_equiv_train_share_of_peak']:.0f}% of peak, "
                  f"eval {100 * r['authors_equiv_eval_share_of_peak']:.0f}% of peak; "
                  f"authors' PyTorch on 2 CPU cores: {AUTHORS_PYTORCH['train_samples_per_s']:.0f} samples/s, "
                  f"{AUTHORS_PYTORCH['eval_users_per_s']:.0f} users/s")
    if args.json:
        record = {
            "benchmark": "train",
            "hardware": describe(),
            "platform": platform_name,
            "load_average_1min": [load_before, load_after],
            "matmul_peak_flop_per_s": peak,
            "matmul_peak_after_flop_per_s": peak_after,
            "matmul_peak_bf16_flop_per_s": peak_bf16,
            "matmul_peak_size": peak_size,
            "dim": args.dim,
            "max_len": args.max_len,
            "pseudo_len": args.pseudo_len,
            "negatives": args.negatives,
            "authors_pytorch_cpu": AUTHORS_PYTORCH,
            "variants": results,
        }
        print(json.dumps(record))
    return 0


if __name__ == "__main__":
    from imvae_jax.runtime import use_huge_pages

    use_huge_pages()  # huge pages for XLA's per-call temporaries; IMVAE_HUGE_PAGES=0 measures without
    sys.exit(main())
