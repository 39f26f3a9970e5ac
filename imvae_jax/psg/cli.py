"""``imvae psg``: pseudo-sequences for a prepared dataset, or LightGCN on the authors' own files.

    imvae psg DATASET --out OUT [--config C] [--set psg.k=v ...] [--run-dir D] [--resume] [--json]
    imvae psg --lightgcn-dir ../shared/data/imvae_cloth_sport [--authors-csv CSV] [--set psg.epochs=60]

Heavy modules (JAX, pyarrow) are imported inside the handler.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "psg",
        help="pseudo-sequence generator: LightGCN on the joint graph, top-T' recall per domain",
        description="Train LightGCN on the joint user-item graph of a prepared dataset (early stopping on "
        "Recall@20 of 20%% held-out interactions), recall the top-T' items per row and domain, and write the "
        "dataset with pseudo_x/pseudo_y to --out. With --lightgcn-dir, train on the authors' LightGCN files "
        "instead and report Recall@20/NDCG@20 on their test file.",
    )
    parser.add_argument("dataset", nargs="?", help="prepared dataset folder")
    parser.add_argument("--out", help="output dataset folder (required with DATASET)")
    parser.add_argument("--config", help="YAML/JSON config file (its psg section is used)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="config override, e.g. psg.epochs=200 or psg.mode=random (repeatable)")
    parser.add_argument("--run-dir", help="checkpoint folder (default: OUT.psg-run beside --out)")
    parser.add_argument("--resume", action="store_true", help="continue from the latest checkpoint in --run-dir")
    parser.add_argument("--lightgcn-dir", help="folder with the authors' lightgcn_{train,test}.txt[.gz]")
    parser.add_argument("--authors-csv", help="with --lightgcn-dir: the authors' test CSV with corr_d1/corr_d2")
    parser.add_argument("--y-offset", type=int, help="Y-item shift of the LightGCN files (default from the folder name)")
    parser.add_argument("--json", action="store_true", help="print the summary as one JSON object last")
    parser.set_defaults(handler=run_psg)


def _config(args: argparse.Namespace):
    from imvae_jax.config import resolve

    return resolve(args.config, args.overrides).psg


def _progress_bar(total: int):
    from tqdm import tqdm

    bar = tqdm(total=total, desc="LightGCN", unit="epoch", file=sys.stderr, dynamic_ncols=True)

    def update(record: dict[str, Any]) -> None:
        bar.update(1)
        shown = {"loss": f"{record['loss']:.4f}"}
        if "recall@20" in record:
            shown["R@20"] = f"{record['recall@20']:.4f}"
        bar.set_postfix(shown, refresh=False)

    return bar, update


def format_curve(history: list[dict[str, Any]]) -> str:
    """The evaluation records as a small table (epoch, loss, Recall@20, NDCG@20)."""
    lines = ["  epoch      loss  recall@20  ndcg@20"]
    step = max(1, len(history) // 15)
    shown = history[::step] + ([history[-1]] if history and (len(history) - 1) % step else [])
    for h in shown:
        lines.append(f"  {h['epoch']:5d}  {h['loss']:8.4f}  {h.get('recall@20', float('nan')):9.4f}  {h.get('ndcg@20', float('nan')):7.4f}")
    return "\n".join(lines)


def run_psg(args: argparse.Namespace) -> int:
    cfg = _config(args)
    if args.lightgcn_dir:
        return _run_authors(args, cfg)
    if not args.dataset or not args.out:
        print("imvae psg: give DATASET and --out (or --lightgcn-dir)", file=sys.stderr)
        return 2
    from imvae_jax.psg.pipeline import add_pseudo

    out = Path(args.out)
    run_dir = Path(args.run_dir) if args.run_dir else out.with_name(out.name + ".psg-run")
    bar, update = _progress_bar(cfg.epochs) if cfg.mode == "lightgcn" else (None, None)
    try:
        summary = add_pseudo(args.dataset, out, cfg, run_dir if cfg.mode == "lightgcn" else None, args.resume, update)
    finally:
        if bar is not None:
            bar.close()
    training = summary["training"]
    print(f"PSG mode {summary['mode']}; graph {summary['graph']}")
    if training:
        print(format_curve(training["history"]))
        print(
            f"best epoch {training['best_epoch']} of {training['epochs_run']} run "
            f"({'early stop' if training['stopped_early'] else 'epoch limit'}): held-out Recall@20 "
            f"{training['recall@20']:.4f}, NDCG@20 {training['ndcg@20']:.4f}; "
            f"{training['seconds_per_epoch']:.3f} s/epoch, training {training['seconds']:.1f} s"
        )
    for name, rates in summary["target_in_pseudo"].items():
        print(f"{name}: target in its domain's pseudo list X {rates['x']:.3f} Y {rates['y']:.3f}")
    print(f"wrote {out} (pseudo fingerprint {summary['fingerprint'][:12]}) in {summary['seconds']:.1f} s")
    if args.json:
        print(json.dumps(summary, default=float))
    return 0


def _run_authors(args: argparse.Namespace, cfg) -> int:
    from imvae_jax.psg.authors import compare_with_authors, train_on_lightgcn_files
    from imvae_jax.psg.io import Y_OFFSETS

    folder = Path(args.lightgcn_dir)
    bar, update = _progress_bar(cfg.epochs)
    try:
        summary = train_on_lightgcn_files(folder, cfg, args.run_dir, args.resume, update)
    finally:
        bar.close()
    embeddings = summary.pop("embeddings")
    print(format_curve(summary["history"]))
    print(
        f"{folder}: {summary['users']} users, {summary['items']} items, {summary['train_interactions']} train / "
        f"{summary['test_interactions']} test interactions; best epoch {summary['best_epoch']} of "
        f"{summary['epochs_run']}; {summary['seconds_per_epoch']:.3f} s/epoch"
    )
    test = summary["test"]
    print(f"lightgcn_test: Recall@20 {test['recall@20']:.4f}  NDCG@20 {test['ndcg@20']:.4f}  ({test['users']} users)")
    if args.authors_csv:
        name = next((k for k in Y_OFFSETS if k in folder.name), None)
        y_offset = args.y_offset if args.y_offset is not None else Y_OFFSETS.get(name or "")
        if y_offset is None:
            print("imvae psg: pass --y-offset (unknown dataset folder name)", file=sys.stderr)
            return 2
        summary["authors"] = compare_with_authors(embeddings, args.authors_csv, y_offset, cfg.top_k, cfg.user_chunk)
        a = summary["authors"]
        print(
            f"authors' corr lists ({a['users_in_graph']} of {a['csv_users']} CSV users in the graph): "
            f"shared items X {a['overlap_d1']:.3f}, Y {a['overlap_d2']:.3f} "
            f"(users with any shared item X {a['users_with_any_overlap_d1']:.3f}, Y {a['users_with_any_overlap_d2']:.3f})"
        )
    if args.json:
        print(json.dumps(summary, default=float))
    return 0
