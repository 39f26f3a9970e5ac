"""``imvae train``, ``imvae evaluate`` and ``imvae run`` (JAX is imported inside the handlers).

* ``imvae train --dataset DIR --run-dir DIR [--config F] [a.b=c ...] [--resume] [--report authors-max]``
  ``[--coordinator HOST:PORT --num-processes N --process-id I]``
* ``imvae evaluate RUN_DIR|CHECKPOINT [--split test|valid] [--which best|latest|--epoch N]``
* ``imvae run``: the quick start. Builds the default synthetic dataset, adds pseudo-sequences
  (the PSG, LightGCN), trains a small IM-VAE for a few epochs,
  evaluates the selected checkpoint on test and prints the table with popularity for reference.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

EXIT_NON_FINITE = 3
EXIT_REFUSED = 4

# `imvae run`: a small but real IM-VAE on the default synthetic data, a few minutes on 2 CPU cores.
# With the paper's training defaults this small run learns item popularity only (measured on the
# default synthetic data, d=64: test HR@10 0.15-0.20 against popularity's 0.18, and h varies across
# users by ~1e-3 against a norm ~7): (a) the three-layer {32, 64, 32} tanh MLPs between the pooled
# sequence and h (posterior encoder then head) pass no user signal at this size (even with z = mu,
# no KL and no dropout: HR@10 0.19; with no hidden layer: 0.33); (b) the six KLs at weight 1 against
# one reconstruction per row collapse every posterior to its prior (sigma 1.00, mu std ~2e-3 across
# users); (c) one BCE negative per row over ~4k rows is little signal. So the quick start uses
# encoders/decoders without hidden layers (one Dense each), KL weights 0.01 and a sampled softmax
# over 100 negatives (test HR@10 ~0.32 against 0.18). The paper's settings stay the defaults
# of the real-data runs.
QUICK_KL_WEIGHT = 0.01
QUICK_OVERRIDES = (
    "model.dim=64",
    "model.num_blocks=1",
    "model.mlp_hidden=[]",
    "train.epochs=10",
    "train.batch_size=256",
    "train.learning_rate=0.002",
    "data.num_train_negatives=100",
    "loss.reconstruction=softmax",
    "loss.weights={" + ", ".join(
        f"kl_{latent}: {QUICK_KL_WEIGHT}" for latent in ("z_x", "z_y", "z_t_x", "z_t_y", "z_a_x", "z_a_y")
    ) + "}",
    "eval.full_ranking=true",
    "psg.epochs=100",
)


def _add_config_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", help="YAML/JSON config file (defaults for what it leaves out)")
    parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="config overrides, e.g. train.epochs=5")
    parser.add_argument("--set", dest="set_overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="config override (repeatable; same as a positional KEY=VALUE)")


def _add_distributed_args(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("multi-host (or env IMVAE_COORDINATOR / IMVAE_NUM_PROCESSES / IMVAE_PROCESS_ID)")
    group.add_argument("--coordinator", help="host:port of process 0 (jax.distributed)")
    group.add_argument("--num-processes", type=int)
    group.add_argument("--process-id", type=int)


def register(subparsers: argparse._SubParsersAction) -> None:
    train = subparsers.add_parser(
        "train",
        help="train a model on a prepared dataset (checkpoints, metrics, results table)",
        description="Train on data.dataset, validate every epoch, keep the latest and best (valid NDCG@10) "
        "checkpoints, evaluate the selected one on test once, and write the run folder.",
    )
    _add_config_args(train)
    train.add_argument("--dataset", help="prepared dataset folder (data.dataset)")
    train.add_argument("--run-dir", help="run folder (train.run_dir)")
    train.add_argument("--resume", action="store_true", help="continue from the run folder's latest checkpoint")
    train.add_argument("--report", choices=("valid-selected", "authors-max"),
                       help="authors-max: ALSO evaluate test every epoch and report each metric's max (labelled)")
    train.add_argument("--no-progress", action="store_true", help="no progress bars")
    _add_distributed_args(train)
    train.set_defaults(handler=run_train)

    evaluate = subparsers.add_parser(
        "evaluate",
        help="evaluate a run's checkpoint on a split",
        description="Restore a checkpoint (best by default) of a run folder and evaluate it on a split.",
    )
    evaluate.add_argument("target", help="a run folder, its checkpoints/ folder, or one checkpoint (checkpoints/<epoch>)")
    evaluate.add_argument("--split", default="test", choices=("test", "valid"))
    evaluate.add_argument("--which", default="best", choices=("best", "latest"))
    evaluate.add_argument("--epoch", type=int, help="a specific checkpointed epoch")
    evaluate.add_argument("--dataset", help="dataset folder (default: the one in the checkpoint's config)")
    evaluate.add_argument("--full", dest="full", action="store_true", default=None, help="also full-catalogue ranking")
    evaluate.add_argument("--no-full", dest="full", action="store_false")
    evaluate.add_argument("--json", action="store_true", help="print the result as one JSON object last")
    evaluate.set_defaults(handler=run_evaluate)

    probe = subparsers.add_parser(
        "probe",
        help="does a trained IM-VAE use its latents? (same latents for every user vs as evaluated)",
        description="Restore a checkpoint and evaluate it twice on a split: as trained (z = posterior means) and "
        "with every row given the same latents (their mean over the split), which makes the model user-independent; "
        "also the spread of each posterior mean across rows against sigma, and its KL to the prior.",
    )
    probe.add_argument("target", help="a run folder, its checkpoints/ folder, or one checkpoint (checkpoints/<epoch>)")
    probe.add_argument("--split", default="test", choices=("test", "valid"))
    probe.add_argument("--which", default="best", choices=("best", "latest"))
    probe.add_argument("--epoch", type=int, help="a specific checkpointed epoch")
    probe.add_argument("--dataset", help="dataset folder (default: the one in the checkpoint's config)")
    probe.add_argument("--json", action="store_true", help="print the result as one JSON object last")
    probe.set_defaults(handler=run_probe)

    quick = subparsers.add_parser(
        "run",
        help="quick start: synthetic data -> PSG -> a small IM-VAE -> test table (a few minutes on CPU)",
        description="Build the default synthetic dataset, generate pseudo-sequences, train a small IM-VAE for a "
        "few epochs, evaluate the validation-selected checkpoint on test, print the table (popularity for reference).",
    )
    _add_config_args(quick)
    quick.add_argument("--out", default="runs/quickstart", help="folder for the dataset and the run (default %(default)s)")
    quick.add_argument("--no-progress", action="store_true")
    quick.set_defaults(handler=run_quick)


def _resolve(args: argparse.Namespace, extra: tuple[str, ...] = ()) -> Any:
    from imvae_jax.config import resolve

    return resolve(args.config, [*extra, *args.overrides, *args.set_overrides])


def run_train(args: argparse.Namespace) -> int:
    from imvae_jax.train import distributed

    distributed.initialize(distributed.resolve_spec(args.coordinator, args.num_processes, args.process_id))
    extra = []
    if args.dataset:
        extra.append(f"data.dataset={args.dataset}")
    if args.run_dir:
        extra.append(f"train.run_dir={args.run_dir}")
    if args.report:
        extra.append(f"eval.report={args.report}")
    if args.no_progress:
        extra.append("train.progress=false")
    from imvae_jax.config import resolve

    cfg = resolve(args.config, [*args.overrides, *args.set_overrides, *extra])
    return _train(cfg, resume=args.resume)


def _train(cfg: Any, resume: bool) -> int:
    from imvae_jax.train.checkpoint import CheckpointMismatch
    from imvae_jax.train.loop import NonFiniteLoss, RunFolderError, results_markdown, run

    try:
        results = run(cfg, resume=resume)
    except NonFiniteLoss as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_NON_FINITE
    except (CheckpointMismatch, RunFolderError) as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_REFUSED
    import jax

    if jax.process_index() == 0:
        print(results_markdown(results))
        print(f"run folder: {cfg.train.run_dir}")
    return 0


def run_evaluate(args: argparse.Namespace) -> int:
    import json

    import jax

    from imvae_jax.eval.report import markdown_table, to_json
    from imvae_jax.train import loop
    from imvae_jax.train.checkpoint import CheckpointMismatch
    from imvae_jax.train.restore import restore

    try:
        cfg, splits, graphdef, state, parallel, epoch = restore(
            args.target, which=args.which, epoch=args.epoch, dataset=args.dataset, full_ranking=args.full
        )
    except (CheckpointMismatch, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_REFUSED
    evaluator = loop.make_evaluator(cfg, splits[args.split], graphdef, parallel, full_ranking=cfg.eval.full_ranking)
    result = evaluator(state.params, state.rest)
    if jax.process_index() == 0:
        title = f"{args.split}, checkpoint epoch {epoch}"
        print(markdown_table(result["sampled"], "valid-selected", title=f"{title}, sampled"))
        if result["full"] is not None:
            print(markdown_table(result["full"], "valid-selected", title=f"{title}, full catalogue"))
        if args.json:
            record = to_json(result["sampled"], "valid-selected", split=args.split, epoch=epoch, full_catalogue=result["full"])
            print(json.dumps(record))
    return 0


def run_probe(args: argparse.Namespace) -> int:
    import json

    from imvae_jax.train.checkpoint import CheckpointMismatch
    from imvae_jax.train.probe import markdown, probe_run

    try:
        result = probe_run(args.target, args.split, which=args.which, epoch=args.epoch, dataset=args.dataset)
    except (CheckpointMismatch, FileNotFoundError, TypeError) as e:
        print(f"error: {args.target}: {e}", file=sys.stderr)
        return EXIT_REFUSED
    print(markdown(result, f"Probe of {args.target}, {args.split}, checkpoint epoch {result['epoch']}"))
    if args.json:
        print(json.dumps({"target": str(args.target), "split": args.split, **result}, default=float))
    return 0


# ------------------------------------------------------------------------------------- imvae run
def popularity_reference(splits: dict, cfg: Any) -> dict[str, Any]:
    """Popularity (training counts) on the test split, same candidates and groups."""
    import numpy as np

    from imvae_jax.data.batches import Batcher
    from imvae_jax.eval.baselines import Popularity
    from imvae_jax.eval.groups import aggregate, group_masks
    from imvae_jax.eval.metrics import target_ranks
    from imvae_jax.eval.report import to_json
    from imvae_jax.eval.rows import rows_from_split
    from imvae_jax.train.evaluate import GROUP_COLUMNS

    model = Popularity.fit(rows_from_split(splits["train"]))
    test = splits["test"]
    ranks, domains, rows = [], [], []
    for batch in Batcher(test, cfg.eval.batch_size, max_len=cfg.data.max_len, pseudo_len=cfg.data.pseudo_len).epoch(0):
        real = batch["mask"] > 0
        ranks.append(np.asarray(target_ranks(model.score(batch)))[real])
        domains.append(batch["target_domain"][real])
        rows.append(batch["row"][real])
    row = np.concatenate(rows)
    columns = {n: test.column(n)[row] for n in GROUP_COLUMNS if n in test.table.column_names}
    result = aggregate(np.concatenate(ranks), np.concatenate(domains), group_masks(columns), ks=tuple(cfg.eval.ks))
    return to_json(result, "model-free", split="test")


def run_quick(args: argparse.Namespace) -> int:
    import json
    import shutil
    import time

    from imvae_jax.data.schema import read_dataset, write_dataset
    from imvae_jax.data.synthetic import build_synthetic
    from imvae_jax.eval.report import markdown_table

    started = time.perf_counter()
    out = Path(args.out)
    extra = [f"train.run_dir={out / 'run'}"] + (["train.progress=false"] if args.no_progress else [])
    cfg = _resolve(args, (*QUICK_OVERRIDES, *extra))
    print(f"[1/4] synthetic dataset ({cfg.data.synthetic_users} users) -> {out / 'dataset'}")
    dataset = write_dataset(build_synthetic(cfg.data), out / "dataset")
    print(f"[2/4] pseudo-sequences (PSG: {cfg.psg.mode}, {cfg.psg.epochs} epochs)")
    from imvae_jax.psg.pipeline import add_pseudo

    pseudo = Path(add_pseudo(dataset, out / "dataset_pseudo", cfg.psg)["out"])
    from imvae_jax.config import apply_overrides

    cfg = apply_overrides(cfg, [f"data.dataset={pseudo}"])
    run_dir = Path(cfg.train.run_dir)
    if run_dir.exists():
        shutil.rmtree(run_dir)
    print(f"[3/4] training {cfg.model.variant} IM-VAE for {cfg.train.epochs} epochs -> {run_dir}")
    code = _train_quiet(cfg)
    if code:
        return code
    print("[4/4] popularity reference on the same test candidates")
    results = json.loads((run_dir / "results.json").read_text())
    reference = popularity_reference(read_dataset(pseudo), cfg)
    results["reference"] = {"popularity": reference}
    (run_dir / "results.json").write_text(json.dumps(results, indent=1))
    from imvae_jax.train.loop import results_markdown

    (run_dir / "results.md").write_text(results_markdown(results))
    groups = ("all", "tailed", "cold_start")
    record = results["protocols"]["valid-selected"]
    print()
    print(markdown_table(record["results"], "valid-selected", groups=groups, title=f"IM-VAE ({cfg.model.variant}), test, sampled"))
    print(markdown_table(reference["results"], "model-free", groups=groups, title="Popularity, test, sampled"))
    if record.get("full_catalogue"):
        print(markdown_table(record["full_catalogue"], "valid-selected", groups=groups, title="IM-VAE, test, full catalogue"))
    print(
        f"done: {results['train_samples_per_s']:,.0f} train samples/s, wall {time.perf_counter() - started:.1f} s; "
        f"everything in {run_dir}"
    )
    return 0


def _train_quiet(cfg: Any) -> int:
    from imvae_jax.train.checkpoint import CheckpointMismatch
    from imvae_jax.train.loop import NonFiniteLoss, RunFolderError, run

    try:
        run(cfg)
    except NonFiniteLoss as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_NON_FINITE
    except (CheckpointMismatch, RunFolderError) as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_REFUSED
    return 0
