"""The shared runner: an experiment spec -> runs -> raw per-run JSON -> mean ± std over seeds.

``run(experiment, out_dir)`` prepares each dataset once, runs the PSG once per (dataset, PSG
settings), trains every (method, seed) through :mod:`experiments.engine` (model-free scorers
are evaluated once: they have no seed), and writes under ``out_dir``:

* ``runs/<dataset>__<method>__seed<i>.json``: one record per run (overrides, protocols,
  wall time); an existing record is reused unless ``force`` (so a long run can resume). The
  trained runs themselves live in ``cache_dir/train/`` and are shared by every experiment
  (:func:`experiments.engine.train`): an identical resolved config is trained once, and a run
  interrupted mid-training continues from its last checkpoint;
* ``summary.json``: per dataset, method and protocol, the seed summary of
  :func:`imvae_jax.eval.report.seed_summary` (``{'mean', 'std', 'values'}`` per cell, std
  with ddof 0 as the authors' ``np.std``);
* ``results.csv``: every number of every run, one row per (dataset, method, seed, protocol,
  domain, group, metric) (:mod:`experiments.export`), for plots and statistics;
* the Markdown tables, written by each table module from ``summary.json``.

Protocols: ``valid-selected`` (our default: checkpoint chosen on validation NDCG@10),
``authors-max`` (each metric's maximum over epochs ON TEST, the authors' reporting; always
labelled), ``model-free`` (scorers without training, shown in both tables).
"""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path
from typing import Any, Callable

from experiments import engine
from experiments.export import write_csv
from experiments.spec import Experiment, Run, SpecError

DEFAULT_ROOT = Path("runs/experiments")
PROTOCOLS = ("valid-selected", "authors-max")


def out_dir_for(experiment: Experiment, root: Path = DEFAULT_ROOT) -> Path:
    return root / (experiment.name + ("-quick" if experiment.quick else ""))


def _progress(total: int, desc: str):
    try:
        from tqdm import tqdm

        return tqdm(total=total, desc=desc, unit="run", leave=False)
    except ImportError:  # pragma: no cover
        return None


def _prefixed(log: Callable[[str], None], bar, prefix: str) -> Callable[[str], None]:
    """``log`` with ``prefix`` (through ``bar.write`` while a progress bar is drawn)."""
    if bar is not None and log is print:
        return lambda message: bar.write(f"{prefix}: {message}")
    return lambda message: log(f"{prefix}: {message}")


def execute(
    experiment: Experiment,
    out_dir: Path,
    cache_dir: Path = DEFAULT_ROOT / "cache",
    data_root: Path = engine.DATA_ROOT,
    force: bool = False,
    runs: list[Run] | None = None,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Run (or reuse) every run of ``experiment``; write raw records and ``summary.json``; return the summary."""
    runs = experiment.runs() if runs is None else runs
    (out_dir / "runs").mkdir(parents=True, exist_ok=True)
    prepared: dict[tuple, Path] = {}
    pseudo: dict[tuple, Path] = {}
    records: list[dict[str, Any]] = []
    bar = _progress(len(runs), experiment.name)
    started = time.perf_counter()
    for run in runs:
        path = out_dir / "runs" / f"{run.run_id}.json"
        record = json.loads(path.read_text()) if path.is_file() and not force else None
        if record is not None:
            check_reusable(record, run, experiment.quick, path)
        if record is not None and not _lacks_probe(record, run):
            records.append(record)
        else:  # to run, or recorded before the same-latents probe (the engine adds it, trains nothing)
            data_key = (run.dataset, tuple(sorted(run.data_overrides().items())))
            stored = None if run.method.scorer or force else _stored_record(experiment, run, cache_dir, data_root)
            if stored is not None:  # trained before (the store or the archive): no data or PSG to build
                dataset, record = stored
            elif run.method.scorer:
                dataset = _prepared(prepared, data_key, run, data_root, cache_dir, experiment.rows)
                max_len = int(run.data_overrides().get("data.max_len", 20))
                record = engine.score(dataset, run.method.scorer, max_len=max_len)
            else:
                dataset = _prepared(prepared, data_key, run, data_root, cache_dir, experiment.rows)
                psg_key = (data_key, tuple(sorted(run.psg_overrides().items())))
                if psg_key not in pseudo:
                    pseudo[psg_key] = engine.pseudo(dataset, run.psg_overrides(), cache_dir, _prefixed(log, bar, experiment.name))
                run_log = _prefixed(log, bar, f"{experiment.name} {run.run_id}")
                twin = engine.archived_elsewhere(run.dataset, dict(run.overrides), data_root, cache_dir, experiment.rows)
                if twin and not force:
                    run_log(f"training it although {twin}")
                record = engine.train(pseudo[psg_key], run.train_overrides(), cache_dir, log=run_log, restart=force)
            record.update(
                run_id=run.run_id,
                experiment=run.experiment,
                dataset=run.dataset.name,
                method=run.method.name,
                label=run.method.label,
                seed=run.seed,
                overrides=dict(run.overrides),
                quick=experiment.quick,
                dataset_folder=str(dataset),
            )
            if not run.method.scorer:  # what ``python -m experiments.store archive`` files it under
                record["archive_key"] = run_key(experiment, run, cache_dir, data_root)
            path.write_text(json.dumps(record, indent=1, default=str))
            records.append(record)
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    summary = summarize(experiment, records)
    summary["wall_s"] = time.perf_counter() - started
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=1, default=str))
    write_csv(out_dir / "results.csv", records)
    log(f"{experiment.name}: {len(records)} runs in {summary['wall_s']:.1f} s -> {out_dir}")
    return summary


def _prepared(prepared: dict[tuple, Path], data_key: tuple, run: Run, data_root: Path, cache_dir: Path, rows: int) -> Path:
    """``run``'s prepared dataset folder, built once per ``data_key`` (memoised in ``prepared``)."""
    if data_key not in prepared:
        prepared[data_key] = engine.prepare(run.dataset, run.data_overrides(), data_root, cache_dir, rows=rows)
    return prepared[data_key]


def run_paths(experiment: Experiment, run: Run, cache_dir: Path, data_root: Path = engine.DATA_ROOT) -> tuple[Path, Path, Path]:
    """``(dataset, pseudo, run_dir)``: where ``run``'s prepared data, PSG output and trained run
    are kept (nothing is built)."""
    dataset = engine.dataset_folder(run.dataset, run.data_overrides(), data_root, cache_dir, experiment.rows)
    pseudo = engine.pseudo_folder(dataset, run.psg_overrides(), cache_dir)
    return dataset, pseudo, cache_dir / "train" / engine.run_name(pseudo, run.train_overrides())


def _stored_record(experiment: Experiment, run: Run, cache_dir: Path, data_root: Path) -> tuple[Path, dict] | None:
    """``(dataset folder, record)`` of trained ``run`` when the store (or the committed archive)
    has its finished record with every protocol; None when it must be trained (or probed)."""
    dataset, run_dir, finished = trained_run(experiment, run, cache_dir, data_root)
    if not finished:
        return None
    record = json.loads((run_dir / "record.json").read_text())
    if _lacks_probe(record, run):  # the probe reads the checkpoint and the data: the usual path
        return None
    return dataset, {**record, "reused": True}


def run_key(experiment: Experiment, run: Run, cache_dir: Path, data_root: Path = engine.DATA_ROOT) -> str:
    """``run``'s key in the committed archive (:func:`experiments.engine.archive_key`)."""
    return engine.archive_key(run.dataset, dict(run.overrides), data_root, cache_dir, experiment.rows)


def run_folder(experiment: Experiment, run: Run, cache_dir: Path, data_root: Path = engine.DATA_ROOT) -> Path:
    """Where the shared store keeps trained ``run`` (nothing is built)."""
    return run_paths(experiment, run, cache_dir, data_root)[2]


def trained_run(experiment: Experiment, run: Run, cache_dir: Path, data_root: Path = engine.DATA_ROOT) -> tuple[Path, Path, bool]:
    """``(dataset, run_dir, finished)``: where ``run``'s prepared data and trained run are kept,
    and whether the store (or the committed archive: :func:`experiments.engine.is_trained`) has
    it finished. Nothing is built."""
    dataset, _, run_dir = run_paths(experiment, run, cache_dir, data_root)
    return dataset, run_dir, engine.is_trained(run_dir, run_key(experiment, run, cache_dir, data_root))


def is_finished(experiment: Experiment, run: Run, out_dir: Path, cache_dir: Path, data_root: Path = engine.DATA_ROOT) -> bool:
    """Whether ``run`` has a record in ``out_dir`` or a finished run in the shared store (or the
    committed archive: :func:`experiments.engine.is_trained`)."""
    if (out_dir / "runs" / f"{run.run_id}.json").is_file():
        return True
    if run.method.scorer:
        return False
    return trained_run(experiment, run, cache_dir, data_root)[2]


def status(
    experiment: Experiment,
    out_dir: Path,
    cache_dir: Path = DEFAULT_ROOT / "cache",
    data_root: Path = engine.DATA_ROOT,
    workers: int = 1,
    runs: list[Run] | None = None,
) -> str:
    """Markdown: where each run of ``experiment`` (or ``runs``, e.g. ``--only-seeds``) stands,
    without training anything.

    A run is ``recorded`` (its record is in ``out_dir``), ``finished`` (trained by this or
    another experiment: the shared store has it), ``partial`` (epochs done of the budget: the
    next call resumes it) or ``to train``. The time left is estimated from the measured seconds
    per epoch of this experiment's finished runs on this machine (per dataset), else of the
    store's other finished runs on the same prepared dataset, and labelled as such; runs
    restored from the committed archive were timed elsewhere and never count. With ``workers``
    > 1 (``--parallel``) the time is divided among them, assuming each keeps that speed.
    """
    rows, epochs_left, per_epoch, folders, twins = [], {}, {}, {}, []
    for run in experiment.runs() if runs is None else runs:
        record_path = out_dir / "runs" / f"{run.run_id}.json"
        budget = int(dict(run.overrides).get("train.epochs", 100))
        state, done, folder = "to train", 0, "-"
        if run.method.scorer:
            state = "recorded" if record_path.is_file() else "to score (seconds)"
        else:
            dataset, run_dir, finished = trained_run(experiment, run, cache_dir, data_root)
            folders[run.dataset.name] = dataset
            folder = str(run_dir)
            metrics = run_dir / "metrics.jsonl"
            done = len(metrics.read_text().splitlines()) if metrics.is_file() else 0
            if finished:
                record = json.loads((run_dir / "record.json").read_text())
                state, done = ("recorded" if record_path.is_file() else "finished"), int(record.get("epochs_run") or done)
                per_epoch.setdefault(run.dataset.name, []).extend(_seconds_per_epoch(record))
            else:
                if done:
                    state = "partial"
                twin = engine.archived_elsewhere(run.dataset, dict(run.overrides), data_root, cache_dir, experiment.rows)
                if twin:
                    twins.append(f"* {run.run_id}: not in the archive under this machine's key: {twin}")
                epochs_left[run.dataset.name] = epochs_left.get(run.dataset.name, 0) + max(budget - done, 0)
        rows.append(f"| {run.run_id} | {state} | {done if not run.method.scorer else '-'} | {folder} |")
    lines = [
        f"## Status of {experiment.name} in `{out_dir}`",
        "",
        "| run | state | epochs done | run folder |",
        "|---|---|---:|---|",
        *rows,
        "",
        *twins,
    ]
    for name, left in sorted(epochs_left.items()):
        seconds, source = per_epoch.get(name), "this machine's finished runs"
        if not seconds:  # e.g. an ablation table whose only finished runs belong to other tables
            seconds = [
                value
                for saved in sorted((cache_dir / "train").glob(f"{folders[name].name}-*/record.json"))
                for value in _seconds_per_epoch(json.loads(saved.read_text()))
            ]
            source = f"{len(seconds)} other finished run(s) on this machine on the same data"
        per = sum(seconds) / len(seconds) if seconds else None
        guess = (
            f"about {left * per / 3600 / workers:.1f} h at the {per:.0f} s/epoch of {source}"
            + (f", in {workers} workers if each keeps that speed" if workers > 1 else "")
            + " (an estimate; early stopping ends runs sooner)"
            if per else "no finished run on this machine to estimate the time from"
        )
        lines.append(f"* {name}: at most {left:,} epochs left to train: {guess}")
    if not epochs_left:
        lines.append("* every trained run is finished")
    return "\n".join(lines) + "\n"


def _seconds_per_epoch(record: dict[str, Any]) -> list[float]:
    """``[wall seconds per epoch]`` of a finished run trained on this machine (this process's
    epochs only: a resumed run counts from its resume); ``[]`` when it was restored from the
    committed archive (timed on another machine) or timed nothing."""
    timed = (record.get("epochs_run") or 0) - (record.get("resumed_from_epoch") or 0)
    if record.get("archived") or timed <= 0 or not record.get("wall_s"):
        return []
    return [record["wall_s"] / timed]


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


def _lacks_probe(record: dict[str, Any], run: Run) -> bool:
    return (
        not run.method.scorer
        and engine.SAME_LATENTS not in record["protocols"]
        and engine.has_latents(run.train_overrides())
    )


def present_protocols(summary: dict[str, Any]) -> tuple[str, ...]:
    """:data:`PROTOCOLS`, then ``same-latents`` when some run of ``summary`` has it."""
    found = {p for by_method in summary["cells"].values() for by_protocol in by_method.values() for p in by_protocol}
    return PROTOCOLS + ((engine.SAME_LATENTS,) if engine.SAME_LATENTS in found else ())


def check_reusable(record: dict[str, Any], run: Run, quick: bool, path: Path) -> None:
    """Refuse to reuse a record made with other settings (another ``--set``, ``--quick``)."""
    stored, wanted = record.get("overrides") or {}, dict(run.overrides)
    changes = [
        f"{k}: stored {stored.get(k, '(unset)')!r}, now {wanted.get(k, '(unset)')!r}"
        for k in sorted(set(stored) | set(wanted))
        if _canonical(stored.get(k)) != _canonical(wanted.get(k))
    ]
    if bool(record.get("quick")) != bool(quick):
        changes.append(f"--quick: stored {bool(record.get('quick'))}, now {bool(quick)}")
    if changes:
        raise SpecError(
            f"{path} was made with other settings ({'; '.join(changes)}): rerun with --force to "
            "replace it, or write to another --out"
        )


def summarize(experiment: Experiment, records: list[dict[str, Any]]) -> dict[str, Any]:
    """``{"cells": {dataset: {method: {protocol: seed summary}}}, ...}`` from run records."""
    from imvae_jax.eval.report import seed_summary

    grouped: dict[tuple[str, str, str], list[dict]] = {}
    for record in records:
        for protocol, result in record["protocols"].items():
            grouped.setdefault((record["dataset"], record["method"], protocol), []).append(result)
    cells: dict[str, Any] = {}
    for (dataset, method, protocol), results in grouped.items():
        cells.setdefault(dataset, {}).setdefault(method, {})[protocol] = seed_summary(results)
    return {
        "experiment": experiment.name,
        "title": experiment.title,
        "quick": experiment.quick,
        "seeds": experiment.seeds,
        "datasets": [d.name for d in experiment.datasets],
        "methods": [dataclasses.asdict(m) for m in experiment.methods],
        "cells": cells,
        "hardware": hardware(),
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "run_wall_s": {r["run_id"]: r.get("wall_s") for r in records},
        "trained_on": trained_on(records),
        "seeds_per_method": seeds_per_method(records),
    }


def seeds_per_method(records: list[dict[str, Any]]) -> dict[str, int]:
    """How many trained runs each method has (``dataset:method`` when there are several datasets)."""
    datasets = {r["dataset"] for r in records}
    out: dict[str, int] = {}
    for r in records:
        if "model-free" not in r["protocols"]:
            key = r["method"] if len(datasets) == 1 else f"{r['dataset']}:{r['method']}"
            out[key] = out.get(key, 0) + 1
    return out


def trained_on(records: list[dict[str, Any]]) -> dict[str, int]:
    """How many of the trained runs each device kind trained (``"not recorded"``: records made
    before runs named their device; a CPU with its model and vector extensions where the record
    has them, as ``cpu (AMD EPYC, avx2/fma)``). Model-free scores are not counted."""
    counts: dict[str, int] = {}
    for record in records:
        if "model-free" not in record["protocols"]:
            kind = record.get("device", "not recorded")
            cpu = record.get("cpu")
            if kind == "cpu" and cpu:
                kind = f"cpu ({', '.join(filter(None, [cpu.get('model'), '/'.join(cpu.get('vector_extensions') or [])]))})"
            counts[kind] = counts.get(kind, 0) + 1
    return dict(sorted(counts.items()))


def hardware() -> dict[str, Any]:
    import os

    from imvae_jax.runtime import cpu_description

    cpu = cpu_description()
    info: dict[str, Any] = {"processor": cpu["model"], "cpu_mhz": cpu["mhz"],
                            "cpu_vector_extensions": cpu["vector_extensions"], "cpu_count": os.cpu_count()}
    try:
        import jax

        info["jax"] = jax.__version__
        info["devices"] = [str(d) for d in jax.devices()]
    except Exception as e:  # pragma: no cover - reporting only
        info["jax"] = f"unavailable: {e}"
    return info


def cell(summary: dict[str, Any], dataset: str, method: str, protocol: str, domain: str, group: str, metric: str) -> dict | None:
    """One seed-summary cell (``{'mean', 'std', 'values'}``) or None when absent.

    Model-free methods answer every protocol with their ``model-free`` result.
    """
    by_protocol = summary["cells"].get(dataset, {}).get(method, {})
    result = by_protocol.get(protocol) or by_protocol.get("model-free")
    if not result:
        return None
    entry = result.get(domain, {}).get(group)
    if not entry:
        return None
    value = entry.get(metric)
    return value if isinstance(value, dict) else None


def group_size(summary: dict[str, Any], dataset: str, domain: str, group: str) -> str:
    """The row count of a test group (from any method of the dataset)."""
    for by_protocol in summary["cells"].get(dataset, {}).values():
        for result in by_protocol.values():
            entry = result.get(domain, {}).get(group)
            if entry is not None:
                n = entry.get("n")
                return "/".join(map(str, n)) if isinstance(n, list) else str(n)
    return "-"
