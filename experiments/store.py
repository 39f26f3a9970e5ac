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

``python -m experiments.store archive OUT [OUT ...]`` copies the store records of the trained runs
behind the tables in ``OUT`` (``runs/experiments/TABLE``; quick runs are left out) into the archive
committed with the code, ``experiments/records/<key>.json`` (a few KB each: results, timings, no
weights), keyed by :func:`experiments.engine.archive_key` (the data's content and the resolved
config, no paths). A fresh clone then renders those tables from the raw input files alone (their
bytes are hashed into the key) without preparing data, running the PSG or training: every
lookup of the store also finds the archive (:func:`experiments.engine.is_trained`). A run made
with other settings or data has another key, so an archived record is never reused for it.

``python -m experiments.store list [--archive DIR]`` prints the archive as a Markdown table, one
row per record (experiment, dataset, method, seed, epochs, selected epoch, mean seconds per epoch, the
CPU or device, the date it finished), sorted by dataset, method and seed: what has been trained at
which budget, without opening the JSON.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

from experiments import engine

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


def archive(out_dirs: list[Path], into: Path | None = None) -> dict[str, list[str]]:
    """Archive the finished trained runs behind the tables in ``out_dirs``;
    ``{archived, unchanged, quick, unfinished}`` (archive keys; run ids of quick runs; run
    folders of unfinished ones). Each archived record also names the run it was archived from."""
    into = engine.ARCHIVE if into is None else Path(into)
    report: dict[str, list[str]] = {"archived": [], "unchanged": [], "quick": [], "unfinished": []}
    for out in map(Path, out_dirs):
        records = sorted((out / "runs").glob("*.json"))
        if not records:
            raise FileNotFoundError(f"{out}: no run records (runs/*.json); give a table's output folder")
        for path in records:
            record = json.loads(path.read_text())
            if not record.get("run_dir"):  # a model-free scorer: recomputed in seconds
                continue
            if record.get("quick"):
                report["quick"].append(record.get("run_id", path.stem))
                continue
            run_dir = Path(record["run_dir"])
            saved = run_dir / "record.json"
            if not saved.is_file():
                report["unfinished"].append(run_dir.name)
                continue
            if not record.get("archive_key"):
                raise ValueError(f"{path}: no archive_key (recorded before the archive existed): render the table again into a new --out")
            target = into / f"{record['archive_key']}.json"
            stored = {k: v for k, v in json.loads(saved.read_text()).items() if k != "archived"}
            stored["archived_from"] = {k: record.get(k) for k in ("experiment", "run_id", "dataset", "method", "seed", "overrides")}
            inputs = _inputs(record)
            if inputs is not None:  # lets a clone whose data files differ say so instead of retraining quietly
                stored["archived_from"]["inputs"] = inputs
            text = json.dumps(stored, indent=1, default=str)
            if target.is_file() and target.read_text() == text:
                report["unchanged"].append(record["archive_key"])
                continue
            into.mkdir(parents=True, exist_ok=True)
            target.write_text(text)
            report["archived"].append(record["archive_key"])
    return report


def _inputs(record: dict) -> dict[str, str] | None:
    """SHA-256 of the input files behind a table's run record (its prepared dataset's), or None
    when they are no longer known (:func:`experiments.engine.prepared_inputs`)."""
    folder = Path(record.get("dataset_folder") or "")
    if not (folder / "inputs.json").is_file():
        return None
    return engine.prepared_inputs(folder)


LIST_COLUMNS = ("key", "experiment", "dataset", "method", "seed", "epochs", "selected epoch", "mean s/epoch", "device", "finished")


def listing(archive_dir: Path | None = None) -> list[dict[str, object]]:
    """One row per archived record of ``archive_dir`` (default the committed archive), sorted by
    (dataset, method, seed); raises ValueError naming a record that is not valid JSON."""
    archive_dir = engine.ARCHIVE if archive_dir is None else Path(archive_dir)
    rows = []
    for path in sorted(archive_dir.glob("*.json")) if archive_dir.is_dir() else []:
        try:
            record = json.loads(path.read_text())
        except json.JSONDecodeError as error:
            raise ValueError(f"{path}: not a JSON run record ({error})") from None
        origin = record.get("archived_from") or {}
        per_epoch = (record.get("seconds_per_epoch") or {}).get("epoch")
        cpu = record.get("cpu") or {}
        device = record.get("device") or "?"
        if device == "cpu" and cpu.get("model"):
            device = f"cpu: {cpu['model']}"
        rows.append({"key": path.stem, "experiment": origin.get("experiment", "?"), "dataset": origin.get("dataset", "?"),
                     "method": origin.get("method", "?"), "seed": origin.get("seed", "?"),
                     "epochs": record.get("epochs_run", "?"), "selected epoch": record.get("selected_epoch", "?"),
                     "mean s/epoch": "?" if per_epoch is None else f"{per_epoch:.1f}", "device": device,
                     "finished": record.get("finished", "?")})
    # seeds as numbers (10 after 2); a record without one first
    return sorted(rows, key=lambda r: (str(r["dataset"]), str(r["method"]), r["seed"] if isinstance(r["seed"], int) else -1))


def listing_markdown(rows: list[dict[str, object]]) -> str:
    """The rows of :func:`listing` as a Markdown table (a line saying so when there are none)."""
    if not rows:
        return "(the archive holds no records)"
    lines = ["| " + " | ".join(LIST_COLUMNS) + " |", "|" + "---|" * len(LIST_COLUMNS)]
    lines += ["| " + " | ".join(str(row[c]) for c in LIST_COLUMNS) + " |" for row in rows]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m experiments.store", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    m = sub.add_parser("merge", help="copy the finished runs of another store into this one")
    m.add_argument("source", type=Path, help="a run store from elsewhere (its train/ folder of run folders)")
    m.add_argument("--into", type=Path, default=DEFAULT_STORE, help=f"this machine's store (default {DEFAULT_STORE})")
    m.add_argument("--checkpoints", action="store_true", help="copy the runs' checkpoints too")
    a = sub.add_parser("archive", help="commit-ready records of the runs behind tables (experiments/records)")
    a.add_argument("outs", type=Path, nargs="+", metavar="OUT", help="a table's output folder (runs/experiments/TABLE)")
    a.add_argument("--into", type=Path, default=None, help=f"the archive (default {engine.ARCHIVE})")
    ls = sub.add_parser("list", help="the archived records as a Markdown table")
    ls.add_argument("--archive", type=Path, default=None, help=f"the archive (default {engine.ARCHIVE})")
    args = parser.parse_args(argv)
    if args.command == "list":
        print(listing_markdown(listing(args.archive)))
        return 0
    if args.command == "archive":
        report = archive(args.outs, args.into)
    else:
        report = merge(args.source, args.into, args.checkpoints)
    for key, names in report.items():
        print(f"{key}: {len(names)}" + "".join(f"\n  {n}" for n in names))
    return 0


if __name__ == "__main__":
    sys.exit(main())
