"""``imvae info``: parameter count and FLOPs of a model config (no JAX needed).

    imvae info --config configs/authors.yaml --authors-n 24507
    imvae info model.variant=paper --dataset data/cloth_sport
    imvae info model.variant=authors --authors-n 24507 --json

Item counts come from ``--items-x/--items-y`` or the ``train.parquet`` metadata of
``--dataset``; the authors variant's joint table size N from ``--authors-n`` or the largest
source item id of the dataset + 1.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "info",
        help="parameter count and FLOPs per example of a model config",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="config override, e.g. model.variant=authors (repeatable)")
    parser.add_argument("--config", type=Path, help="YAML/JSON config file")
    parser.add_argument("--dataset", type=Path, help="prepared dataset folder (reads train.parquet metadata)")
    parser.add_argument("--items-x", type=int, help="items in domain X")
    parser.add_argument("--items-y", type=int, help="items in domain Y")
    parser.add_argument("--authors-n", type=int, help="the authors' item_length N (joint table of 2N rows)")
    parser.add_argument("--negatives", type=int, default=1, help="training negatives per row (default 1)")
    parser.add_argument("--eval-negatives", type=int, default=999, help="evaluation negatives (default 999)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.set_defaults(handler=run_info)


def _item_counts(args: argparse.Namespace, variant: str) -> tuple[int, int, int | None]:
    n_x, n_y, joint = args.items_x, args.items_y, args.authors_n
    if args.dataset is not None:
        from imvae_jax.data.schema import read_split

        meta = read_split(args.dataset / "train.parquet", check=False).meta
        n_x = n_x if n_x is not None else int(meta["n_items_x"])
        n_y = n_y if n_y is not None else int(meta["n_items_y"])
        if joint is None and variant == "authors":
            ids = [int(v) for v in [*meta["item_ids_x"][1:], *meta["item_ids_y"][1:]]]
            joint = max(ids) + 1
    if variant == "authors":
        if joint is None:
            raise SystemExit("imvae info: variant 'authors' needs --authors-n N or --dataset DIR")
        return n_x or 0, n_y or 0, joint
    if n_x is None or n_y is None:
        raise SystemExit(f"imvae info: variant {variant!r} needs --items-x and --items-y, or --dataset DIR")
    return n_x, n_y, None


def run_info(args: argparse.Namespace) -> int:
    from imvae_jax.config import resolve
    from imvae_jax.model import counting

    cfg = resolve(args.config, tuple(args.overrides)).model
    n_x, n_y, joint = _item_counts(args, cfg.variant)
    report: dict[str, object] = {
        "variant": cfg.variant,
        "n_items_x": n_x,
        "n_items_y": n_y,
        "joint_size": joint,
        "parameters": counting.count_params(cfg, n_items_x=n_x, n_items_y=n_y, joint_size=joint),
        "train_forward_flops_per_row": counting.forward_flops(cfg, n_negatives=args.negatives),
        "train_flops_per_row": counting.training_flops_per_row(cfg, n_negatives=args.negatives),
        "eval_forward_flops_per_row": counting.forward_flops(
            cfg, n_negatives=args.eval_negatives, training=False
        ),
    }
    if cfg.variant == "authors":
        report["authors_code_train_flops_per_row"] = counting.training_flops_per_row(
            cfg, n_negatives=args.negatives, convention="authors"
        )
        report["authors_code_eval_forward_flops_per_row"] = counting.forward_flops(
            cfg, n_negatives=args.eval_negatives, training=False, convention="authors"
        )
    if args.json:
        print(json.dumps(report))
        return 0
    print(f"variant {cfg.variant}: d={cfg.dim}, T={cfg.max_len}, pseudo={cfg.pseudo_len}")
    items = f"N={joint} (table 2N rows)" if joint else f"items X={n_x}, Y={n_y}"
    print(f"  {items}")
    print(f"  parameters                         {report['parameters']:>15,}")
    for key, label in (
        ("train_forward_flops_per_row", f"forward FLOPs / training row (k={args.negatives})"),
        ("train_flops_per_row", "forward+backward FLOPs / training row"),
        ("eval_forward_flops_per_row", f"forward FLOPs / evaluated row (k={args.eval_negatives})"),
        ("authors_code_train_flops_per_row", "authors' code: fwd+bwd / training row"),
        ("authors_code_eval_forward_flops_per_row", "authors' code: forward / evaluated row"),
    ):
        if key in report:
            value = int(report[key])  # type: ignore[arg-type]
            print(f"  {label:<46} {value:>15,}  ({value / 1e6:.1f} MFLOP)")
    sys.stdout.flush()
    return 0
