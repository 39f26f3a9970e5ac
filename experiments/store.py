"""Bring finished runs trained elsewhere into this machine's run store.

Runs are keyed by their resolved config (:func:`experiments.engine.run_name`), so a run trained on
another machine (``--only-seeds`` on a lent GPU, a cluster job) has the same folder name as here.
``python -m experiments.store merge SRC [--into runs/experiments/cache/train]`` copies every
*finished* run folder of ``SRC`` (one with ``record.json``) that is not finished here; a partial
local folder of the same run is replaced. Checkpoints are not needed to render tables and are
copied only with ``--checkpoints``. Unfinished folders of ``SRC`` are skipped (their checkpoints
are what would let them resume: train them here or finish them there). Nothing is overwritten
when both sides have finished the run: the local record stays and the merge says so. (A record
made before the ``same-latents`` probe existed gets it from the checkpoint when a table next
uses it: copy such runs with ``--checkpoints``.)
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

DEFAULT_STORE = Path("runs/experiments/cache/train")


def merge(source: Path, into: Path = DEFAULT_STORE, checkpoints: bool = False) -> dict[str, list[str]]:
    """Copy the finished runs of ``source`` into ``into``; ``{copied, replaced_partial, kept_local, unfinished}``."""
    source, into = Path(source), Path(into)
    if not source.is_dir():
        raise FileNotFoundError(f"{source}: no such run store (a folder of run folders)")
    report: dict[str, list[str]] = {"copied": [], "replaced_partial": [], "kept_local": [], "unfinished": []}
    for run in sorted(p for p in source.iterdir() if p.is_dir()):
        if not (run / "record.json").is_file():
            report["unfinished"].append(run.name)
            continue
        target = into / run.name
        if (target / "record.json").is_file():
            report["kept_local"].append(run.name)
            continue
        if target.exists():
            shutil.rmtree(target)
            report["replaced_partial"].append(run.name)
        else:
            report["copied"].append(run.name)
        ignore = None if checkpoints else shutil.ignore_patterns("checkpoints")
        shutil.copytree(run, target, ignore=ignore)
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m experiments.store", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    m = sub.add_parser("merge", help="copy the finished runs of another store into this one")
    m.add_argument("source", type=Path, help="a run store from elsewhere (its train/ folder of run folders)")
    m.add_argument("--into", type=Path, default=DEFAULT_STORE, help=f"this machine's store (default {DEFAULT_STORE})")
    m.add_argument("--checkpoints", action="store_true", help="copy the runs' checkpoints too")
    args = parser.parse_args(argv)
    report = merge(args.source, args.into, args.checkpoints)
    for key, names in report.items():
        print(f"{key}: {len(names)}" + "".join(f"\n  {n}" for n in names))
    return 0


if __name__ == "__main__":
    sys.exit(main())
