"""Data-layer benchmark: batch building rows/s on the Cloth-Sport training split (authors' files)
and the wall time of ``imvae prepare`` on those files.

    python benchmarks/bench_data.py [--data-dir ../shared/data] [--batch-size 256] [--epochs 20] [--json]

The batcher runs on one core (numpy, no threads); the target is >= 200,000 rows/s.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from hardware import describe  # benchmarks/hardware.py

REPO = Path(__file__).resolve().parents[1]


def default_data_dir() -> Path:
    env = os.environ.get("IMVAE_SHARED_DATA")
    return Path(env) if env else REPO.parent / "shared" / "data"


def rows_per_second(batcher, epochs: int) -> float:
    rows = 0
    start = time.perf_counter()
    for epoch in range(epochs):
        for batch in batcher.epoch(epoch):
            rows += int(batch["mask"].sum())
    return rows / (time.perf_counter() - start)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=default_data_dir())
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--json", action="store_true", help="print one JSON object as the last line")
    args = parser.parse_args()
    folder = args.data_dir / "imvae_cloth_sport"
    train_csv, test_csv = folder / "cloth_sport_train.csv.gz", folder / "cloth_sport_test_csu.csv.gz"
    if not train_csv.is_file():
        print(f"Cloth-Sport files not found under {folder}", file=sys.stderr)
        return 1

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "cloth_sport"
        command = [sys.executable, "-m", "imvae_jax", "prepare", "--source", "authors",
                   "--train", str(train_csv), "--test", str(test_csv), "--out", str(out)]
        start = time.perf_counter()
        done = subprocess.run(command, cwd=REPO, capture_output=True, text=True,
                              env={**os.environ, "PYTHONPATH": str(REPO)})
        prepare_s = time.perf_counter() - start
        if done.returncode:
            print(done.stdout, done.stderr, file=sys.stderr)
            return done.returncode
        from imvae_jax.data.batches import Batcher
        from imvae_jax.data.schema import read_dataset

        start = time.perf_counter()
        splits = read_dataset(out)
        read_s = time.perf_counter() - start

    train, test = splits["train"], splits["test"]
    train_batcher = Batcher(train, args.batch_size, num_negatives=1, shuffle=True, seed=0)
    train_rps = rows_per_second(train_batcher, args.epochs)
    eval_batcher = Batcher(test, args.batch_size)
    eval_rps = rows_per_second(eval_batcher, max(1, args.epochs // 4))


    figures = {
        "train_batch_rows_per_s": round(train_rps),
        "eval_batch_rows_per_s_1000_candidates": round(eval_rps),
        "prepare_wall_s": round(prepare_s, 3),
        "read_dataset_s": round(read_s, 3),
        "train_rows": len(train),
        "test_rows": len(test),
        "batch_size": args.batch_size,
    }
    print(f"Cloth-Sport training split: {len(train):,} rows, batch {args.batch_size}, T=20, 1 negative")
    print(f"  batch building (train, shuffled, sampled negatives): {train_rps:,.0f} rows/s (target >= 200,000)")
    print(f"  batch building (test, 1 + 999 stored candidates):    {eval_rps:,.0f} rows/s")
    print(f"  imvae prepare (authors' files, incl. audit + write): {prepare_s:.2f} s wall")
    print(f"  read_dataset with validation:                        {read_s:.2f} s")
    if args.json:
        record = {
            **figures,
            "hardware": describe(),
        }
        print(json.dumps(record))
    return 0


if __name__ == "__main__":
    from imvae_jax.runtime import use_huge_pages

    use_huge_pages()  # huge pages for XLA's per-call temporaries; IMVAE_HUGE_PAGES=0 measures without
    sys.exit(main())
