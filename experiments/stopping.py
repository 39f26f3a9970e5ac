"""What early stopping would have chosen: replay a finished run's per-epoch history.

A run trained for every epoch (``train.patience=0``, the paper's protocol) records, per epoch,
the validation NDCG@10 that selects the checkpoint and the sampled test metrics
(``authors-max-test/...``, with the run's fixed candidates). Training is deterministic and early
stopping only cuts it short, so the run with ``train.patience=P`` stops, selects and scores
exactly as :func:`replay` says, without training it (a test checks this against real runs).

Run: ``python -m experiments.stopping RUN_DIR [RUN_DIR ...] [--patience 0 3 5 10 20] [--plot PNG] [--json]``
(a run folder holds ``metrics.jsonl``; experiment runs are under ``runs/experiments/cache/train``).
``--plot`` draws each run's learning curves: validation NDCG@10 (what selects) and the sampled
test HR@10 of each domain, per epoch.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

TEST_PREFIX = "authors-max-test/"


def stop(select: Sequence[float], patience: int) -> tuple[int, int]:
    """``(epochs run, selected epoch)``, 1-based, under the training loop's rule.

    Before each epoch the loop stops once ``patience`` validations in a row brought no strictly
    better value (``patience=0``: never); the selected epoch is the first best one.
    """
    if not select:
        raise ValueError("no epochs in the history")
    best, since_best, chosen, run = -math.inf, 0, 0, 0
    for epoch, value in enumerate(select, start=1):
        if patience and since_best >= patience:
            break
        run = epoch
        if value > best:
            best, since_best, chosen = value, 0, epoch
        else:
            since_best += 1
    return run, chosen


def replay(history: Sequence[dict[str, Any]], patience: int) -> dict[str, Any]:
    """The early-stopped run of ``history`` (one record per validated epoch, ``metrics.jsonl``).

    Returns ``epochs_run``, ``selected_epoch``, ``valid_ndcg@10``, ``test`` (the sampled test
    metrics of the selected epoch: the ``valid-selected`` protocol) and ``authors_max`` (each
    test metric's maximum over the epochs run), the last two as ``{"x/all/hr@10": value}``.
    """
    epochs = [int(r["epoch"]) for r in history]
    if epochs != list(range(1, len(epochs) + 1)):
        raise ValueError(f"replay needs a validation after every epoch (train.eval_every=1); epochs {epochs[:5]}...")
    run, chosen = stop([float(r["select"]) for r in history], patience)
    kept = history[:run]
    keys = [k for k in history[0] if k.startswith(TEST_PREFIX) and not k.endswith("/n")]
    test = {k[len(TEST_PREFIX):]: history[chosen - 1][k] for k in keys}
    authors_max = {}
    for k in keys:
        values = [r[k] for r in kept if r.get(k) is not None]
        authors_max[k[len(TEST_PREFIX):]] = max(values) if values else None
    return {
        "patience": patience,
        "epochs_run": run,
        "selected_epoch": chosen,
        "valid_ndcg@10": history[chosen - 1]["select"],
        "test": test,
        "authors_max": authors_max,
    }


def read_history(run_dir: Path) -> list[dict[str, Any]]:
    path = run_dir / "metrics.jsonl"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: not found (a run folder of `imvae train` or of an experiment)")
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def table(run_dir: Path, rows: list[dict[str, Any]]) -> str:
    """Markdown: one line per patience, test HR@10 / NDCG@10 (%) on all users of each domain."""
    cells = [f"{d}/all/{m}" for d in ("x", "y") for m in ("hr@10", "ndcg@10")]
    head = " | ".join(f"{c} selected" for c in cells) + " | " + " | ".join(f"{c} authors-max" for c in cells)
    lines = [
        f"`{run_dir}` (sampled test, %)",
        "",
        f"| patience | epochs run | selected epoch | valid ndcg@10 | {head} |",
        "|---:|---:|---:|---:|" + "---:|" * (2 * len(cells)),
    ]
    for r in rows:
        values = [r["test"].get(c) for c in cells] + [r["authors_max"].get(c) for c in cells]
        shown = " | ".join("-" if v is None else f"{100 * v:.2f}" for v in values)
        lines.append(f"| {r['patience'] or 'none'} | {r['epochs_run']} | {r['selected_epoch']} | {100 * r['valid_ndcg@10']:.2f} | {shown} |")
    return "\n".join(lines)


def plot(histories: dict[str, list[dict[str, Any]]], path: Path) -> Path:
    """Learning curves (%, per epoch): validation NDCG@10 and test HR@10 of X and Y, one line per run."""
    from experiments.plot import pyplot, save_figure

    plt = pyplot()
    panels = (("select", "valid NDCG@10"), (TEST_PREFIX + "x/all/hr@10", "test HR@10, X"), (TEST_PREFIX + "y/all/hr@10", "test HR@10, Y"))
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.4))
    for label, history in histories.items():
        epochs = [r["epoch"] for r in history]
        for ax, (key, _) in zip(axes, panels):
            ax.plot(epochs, [100 * r[key] if r.get(key) is not None else float("nan") for r in history], label=label, lw=1.2)
    for ax, (_, title) in zip(axes, panels):
        ax.set_title(title)
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("%")
    axes[-1].legend(fontsize=7)
    fig.tight_layout()
    return save_figure(fig, path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m experiments.stopping", description=__doc__.split("\n")[0])
    parser.add_argument("run_dirs", nargs="+", type=Path, help="run folders trained with train.patience=0")
    parser.add_argument("--patience", type=int, nargs="+", default=[0, 3, 5, 10, 20])
    parser.add_argument("--plot", type=Path, help="write the learning curves to this PNG")
    parser.add_argument("--label", nargs="+", help="one legend label per run folder (default: folder names)")
    parser.add_argument("--json", action="store_true", help="also print one JSON object as the last line")
    args = parser.parse_args(argv)
    labels = args.label or [d.name for d in args.run_dirs]
    if len(labels) != len(args.run_dirs):
        parser.error(f"--label: {len(labels)} labels for {len(args.run_dirs)} run folders")
    out, histories = {}, {}
    for run_dir, label in zip(args.run_dirs, labels):
        history = histories[label] = read_history(run_dir)
        rows = [replay(history, p) for p in args.patience]
        out[str(run_dir)] = rows
        print(table(run_dir, rows), end="\n\n")
    if args.plot:
        print(f"learning curves: {plot(histories, args.plot)}")
    if args.json:
        print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
