"""``imvae prepare`` and ``imvae audit``. Heavy modules are imported inside the handlers."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any


def register(subparsers: argparse._SubParsersAction) -> None:
    prepare = subparsers.add_parser(
        "prepare",
        help="build a prepared dataset (train/valid/test Parquet + audit.json)",
        description="Build a dataset from the synthetic generator, the authors' CSV files or raw ratings files; "
        "print a summary table and the audit, and write the folder atomically.",
    )
    prepare.add_argument("--config", help="YAML/JSON config file (its data section is used)")
    prepare.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                         help="config override, e.g. data.seed=3 (repeatable)")
    prepare.add_argument("--source", choices=("synthetic", "authors", "ratings"), help="overrides data.source")
    prepare.add_argument("--train", help="authors' training CSV (data.train_path)")
    prepare.add_argument("--test", help="authors' test CSV (data.test_path)")
    prepare.add_argument("--ratings-x", help="domain-X ratings file (data.ratings_x)")
    prepare.add_argument("--ratings-y", help="domain-Y ratings file (data.ratings_y)")
    prepare.add_argument("--seed", type=int, help="overrides data.seed")
    prepare.add_argument("--out", help="output folder (default data.dataset)")
    prepare.add_argument("--no-overwrite", action="store_true", help="fail if the output folder exists")
    prepare.add_argument("--json", action="store_true", help="print the summary as one JSON object last")
    prepare.set_defaults(handler=run_prepare)

    audit = subparsers.add_parser("audit", help="audit a prepared dataset (chronology, leakage, cold-start, duplicates)")
    audit.add_argument("dataset", help="prepared dataset folder")
    audit.add_argument("--out", help="where to save the JSON report (default DATASET/audit.json)")
    audit.set_defaults(handler=run_audit)


def data_config(args: argparse.Namespace):
    """The DataConfig from --config/--set, then the explicit flags."""
    import dataclasses

    from imvae_jax.config import resolve

    cfg = resolve(args.config, args.overrides).data
    flags = {
        "source": args.source,
        "train_path": args.train,
        "test_path": args.test,
        "ratings_x": args.ratings_x,
        "ratings_y": args.ratings_y,
        "seed": args.seed,
        "dataset": args.out,
    }
    return dataclasses.replace(cfg, **{k: v for k, v in flags.items() if v is not None})


def build(cfg, progress=None) -> dict:
    """``{train, valid, test}`` Splits from ``cfg.source``."""
    if cfg.source == "synthetic":
        from imvae_jax.data.synthetic import build_synthetic

        return build_synthetic(cfg, progress)
    if cfg.source == "authors":
        from imvae_jax.data.readers import build_authors

        return build_authors(cfg, progress)
    from imvae_jax.data.readers import build_ratings

    return build_ratings(cfg, progress)


def summary(splits: dict) -> list[dict[str, Any]]:
    """Per split: users, items and interactions per domain (lists incl. the target), overlap,
    cold-start rows by kind, tail thresholds (the data README's definitions)."""
    import numpy as np

    from imvae_jax.data.audit import full_lists

    out = []
    for name, s in splits.items():
        lx, ly = full_lists(s)
        user = s.column("user_id")
        both = (np.diff(lx[0]) > 0) & (np.diff(ly[0]) > 0)
        kind = s.column("cold_start_kind")
        out.append(
            {
                "split": name,
                "rows": len(s),
                "users": int(np.unique(user).size),
                "items_x": int(np.unique(lx[1]).size),
                "items_y": int(np.unique(ly[1]).size),
                "interactions_x": int(lx[1].size),
                "interactions_y": int(ly[1].size),
                "overlapping_users": int(np.unique(user[s.column("overlap")]).size),
                "overlap_rows_both_lists": int(both.sum()),
                "cold_start_rows": int((kind == 1).sum()),
                "no_history_rows": int((kind == 2).sum()),
                "cold_start_users": int(np.unique(user[kind > 0]).size),
                "tailed_rows": int(s.column("tailed").sum()),
                "tail_threshold_x": s.meta["tail_threshold_x"],
                "tail_threshold_y": s.meta["tail_threshold_y"],
            }
        )
    return out


def format_summary(rows: list[dict[str, Any]], n_items: tuple[int, int]) -> str:
    head = (
        f"{'split':<6} {'rows':>7} {'users':>7} {'items X':>8} {'items Y':>8} {'inter. X':>9} {'inter. Y':>9} "
        f"{'overlap users':>13} {'cold-start':>10} {'no-hist':>7} {'tailed':>7} {'tail thr X/Y':>12}"
    )
    lines = [f"catalogue: {n_items[0]:,} X items, {n_items[1]:,} Y items", head]
    for r in rows:
        lines.append(
            f"{r['split']:<6} {r['rows']:>7,d} {r['users']:>7,d} {r['items_x']:>8,d} {r['items_y']:>8,d} "
            f"{r['interactions_x']:>9,d} {r['interactions_y']:>9,d} {r['overlapping_users']:>13,d} "
            f"{r['cold_start_rows']:>10,d} {r['no_history_rows']:>7,d} {r['tailed_rows']:>7,d} "
            f"{str(r['tail_threshold_x']) + ' / ' + str(r['tail_threshold_y']):>12}"
        )
    return "\n".join(lines)


STATS_COMPARED = (
    "rows", "users", "overlapping_users", "overlap_rows", "items_d1", "items_d2", "interactions_d1_rows",
    "interactions_d2_rows", "cold_start_rows", "no_history_rows", "tail_len_d1", "tail_len_d2",
)


def compare_with_stats(path: str, stats: dict[str, Any]) -> str | None:
    """Compare a source file's statistics with a ``stats.json`` found above it; None if none."""
    file = Path(path).resolve()
    for folder in file.parents:
        candidate = folder / "stats.json"
        if candidate.is_file():
            known = json.loads(candidate.read_text()).get("files", {})
            key = file.relative_to(folder).as_posix()
            if key not in known:
                return None
            expected = known[key]["stats"]
            diffs = [f"{k} {stats[k]} vs {expected[k]}" for k in STATS_COMPARED if stats.get(k) != expected.get(k)]
            if diffs:
                return f"{key}: DISAGREES with {candidate}: " + "; ".join(diffs)
            return f"{key}: agrees with {candidate} ({', '.join(STATS_COMPARED)})"
    return None


def format_file_stats(source: dict[str, Any]) -> str:
    lines = [
        f"{'source file':<12} {'rows':>7} {'users':>7} {'overlap users':>13} {'items X/Y (shared)':>20} "
        f"{'inter. X/Y':>15} {'cold-start':>10} {'no-hist':>7} {'tail thr':>8}"
    ]
    for name, st in source["file_stats"].items():
        lines.append(
            f"{name:<12} {st['rows']:>7,d} {st['users']:>7,d} {st['overlapping_users']:>13,d} "
            f"{str(st['items_d1']) + ' / ' + str(st['items_d2']) + ' (' + str(st['ids_in_both_columns']) + ')':>20} "
            f"{str(st['interactions_d1_rows']) + ' / ' + str(st['interactions_d2_rows']):>15} "
            f"{st['cold_start_rows']:>10,d} {st['no_history_rows']:>7,d} "
            f"{str(st['tail_len_d1']) + ' / ' + str(st['tail_len_d2']):>8}"
        )
    return "\n".join(lines)


def run_prepare(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from imvae_jax.data.audit import audit, format_report
    from imvae_jax.data.schema import DatasetError, write_dataset

    try:
        cfg = data_config(args)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if not cfg.dataset:
        print("error: give --out FOLDER (or data.dataset)", file=sys.stderr)
        return 2
    started = time.perf_counter()
    bar = tqdm(desc=f"prepare {cfg.source}", unit="step", file=sys.stderr, leave=False)

    def progress(name: str) -> None:
        bar.set_postfix_str(name)
        bar.update(1)

    try:
        splits = build(cfg, progress)
        progress("audit")
        report = audit(splits)
        progress("write")
        folder = write_dataset(splits, cfg.dataset, audit=report, overwrite=not args.no_overwrite)
    except DatasetError as e:
        bar.close()
        print(f"error: {e}", file=sys.stderr)
        return 1
    bar.close()
    seconds = time.perf_counter() - started
    rows = summary(splits)
    test = splits["test"]
    print(format_summary(rows, test.n_items))
    source = test.meta["source"]
    if source.get("kind") == "authors":
        print(format_file_stats(source))
        for which, path in (("train", source["train"]), ("test", source["test"])):
            line = compare_with_stats(path, source["file_stats"][which])
            if line:
                print(line)
        cs = source["valid_cold_start"]
        if cs.get("mode") == "like_test":
            print(
                f"valid cold-start like test: {cs['valid_rows_cut']['other_domain']} rows cut to cold-start "
                f"({100 * cs['share_overlap_rows_cold_start']:.1f}% of overlapping rows), "
                f"{cs['valid_rows_cut']['no_history']} to no history "
                f"({100 * cs['share_single_rows_no_history']:.1f}% of single-domain rows)"
            )
    print(format_report(report))
    if report["warnings"]:
        print("\n" + "!" * 78, file=sys.stderr)
        print(f"WARNING: the audit found {len(report['warnings'])} problem(s) in this dataset:", file=sys.stderr)
        for w in report["warnings"]:
            print(f"  - {w}", file=sys.stderr)
        print("!" * 78, file=sys.stderr)
    print(f"wrote {folder} in {seconds:.2f} s (fingerprints: "
          + ", ".join(f"{n} {s.fingerprint[:12]}" for n, s in splits.items()) + ")")
    if args.json:
        print(json.dumps({"dataset": str(folder), "seconds": seconds, "summary": rows,
                          "warnings": report["warnings"]}))
    return 0


def run_audit(args: argparse.Namespace) -> int:
    from imvae_jax.data.audit import audit, format_report
    from imvae_jax.data.schema import DatasetError, read_dataset

    try:
        splits = read_dataset(args.dataset)
    except DatasetError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    report = audit(splits)
    print(format_report(report))
    out = Path(args.out) if args.out else Path(args.dataset) / "audit.json"
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"saved {out}")
    if report["warnings"]:
        print(f"WARNING: {len(report['warnings'])} finding(s); see above", file=sys.stderr)
    return 0
