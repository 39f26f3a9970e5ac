"""The experiments' only contact with the library: prepare data, run the PSG, train, score.

Every stage is cached under ``cache_dir`` by a hash of what determines it, so an experiment
prepares each dataset once and runs the PSG once per (dataset, PSG settings), however many
models and seeds use them. JAX is imported lazily (inside the functions that need it).

* :func:`prepare` : ``imvae_jax.data`` (the authors' CSVs or the synthetic generator) ->
  a prepared dataset folder;
* :func:`pseudo` : ``imvae_jax.psg`` on a prepared folder -> a folder with ``pseudo_*``;
* :func:`train` : ``imvae_jax.train`` on a resolved config -> a run record with one result
  per protocol (``valid-selected`` and, labelled, ``authors-max``);
* :func:`score` : a model-free scorer of ``imvae_jax.eval.baselines`` on the test split.

A run record is ``{"protocols": {protocol: result}, "wall_s": float, ...}`` where a result
is ``{domain: {group: {metric: value, "n": rows}}}`` (``imvae_jax.eval.groups.aggregate``).
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from experiments import derive
from experiments.spec import DatasetSpec, digest


def _data_root() -> Path:
    """``$IMVAE_SHARED_DATA`` (as the tests), ``$IMVAE_DATA``, else ``../shared/data`` beside the repository."""
    for name in ("IMVAE_SHARED_DATA", "IMVAE_DATA"):
        if os.environ.get(name):
            return Path(os.environ[name])
    return Path(__file__).resolve().parents[1].parent / "shared" / "data"


DATA_ROOT = _data_root()
KS = (10,)


class EngineError(RuntimeError):
    """An input of an experiment is missing (names the file and what to do)."""


# ----------------------------------------------------------------------------- data


def _config(overrides: dict[str, Any]):
    """The root ``Config``: defaults + ``section.key: value`` overrides (values JSON-encoded)."""
    from imvae_jax.config import Config, apply_overrides

    return apply_overrides(Config(), [f"{k}={json.dumps(v)}" for k, v in overrides.items()])


def _source_files(spec: DatasetSpec, data_root: Path, cache_dir: Path, rows: int, seed: int) -> tuple[Path, Path]:
    """The train/test CSVs to read: the originals, or derived copies (slice, density, overlap)."""
    train, test = data_root / spec.train, data_root / spec.test
    for path in (train, test):
        if not path.is_file():
            raise EngineError(f"dataset {spec.name}: file {path} not found (set $IMVAE_SHARED_DATA or --data-root)")
    change = spec.derive_dict()
    if not rows and not change:
        return train, test
    key = digest({"train": file_digest(train), "test": file_digest(test), "rows": rows, "derive": change, "seed": seed})
    folder = cache_dir / "derived" / f"{spec.name}-{key}"
    out_train, out_test = folder / "train.csv.gz", folder / "test.csv.gz"
    if out_train.is_file() and out_test.is_file():
        return out_train, out_test
    train_rows, test_rows = derive.read_rows(train), derive.read_rows(test)
    if rows:
        train_rows, test_rows = derive.slice_users(train_rows, test_rows, rows, seed)
    if "density" in change:
        train_rows, test_rows = derive.thin_density(train_rows, test_rows, float(change["density"]), seed)
    if "overlap" in change:
        train_rows = derive.thin_overlap(train_rows, float(change["overlap"]), seed)
    derive.write_rows(test_rows, out_test)
    derive.write_rows(train_rows, out_train)
    return out_train, out_test


def data_config(spec: DatasetSpec, data_overrides: dict[str, Any], data_root: Path, cache_dir: Path, rows: int):
    """The resolved ``DataConfig`` of a dataset (derived files made on the way)."""
    cfg = _config(data_overrides).data
    changes: dict[str, Any] = {"source": spec.source}
    if spec.source == "authors":
        train, test = _source_files(spec, data_root, cache_dir, rows, cfg.seed)
        changes.update(train_path=str(train), test_path=str(test))
    return dataclasses.replace(cfg, **changes)


# fields of DataConfig that name files: a dataset is keyed by what they hold, not where they are
_PATH_FIELDS = ("dataset", "train_path", "test_path", "ratings_x", "ratings_y")
_INPUTS = "inputs.json"  # written last by prepare: the folder's key and what it was built from


@functools.lru_cache(maxsize=64)
def _digest_of(path: str, size: int, mtime_ns: int) -> str:
    del size, mtime_ns  # part of the cache key only: a rewritten file is read again
    sha = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            sha.update(block)
    return sha.hexdigest()


def file_digest(path: Path | str) -> str:
    """SHA-256 of a file's bytes (cached per size and mtime)."""
    stat = Path(path).stat()
    return _digest_of(str(path), stat.st_size, stat.st_mtime_ns)


def dataset_key(cfg) -> str:
    """What determines a prepared dataset: the data settings and the contents of its input files
    (not their paths or times, so a fresh copy of the data on another machine finds the cache)."""
    from imvae_jax.config import to_dict

    return _content_key(to_dict(cfg), input_digests(cfg))


def _content_key(data: dict[str, Any], files: dict[str, str]) -> str:
    """The key of a prepared dataset: its data settings less the path fields, and the input files' digests."""
    return digest({"data": {name: value for name, value in data.items() if name not in _PATH_FIELDS}, "files": files})


def input_digests(cfg) -> dict[str, str]:
    """``{field: SHA-256}`` of the input files a ``DataConfig`` names (``train_path``, ...)."""
    return {name: file_digest(getattr(cfg, name)) for name in _PATH_FIELDS[1:] if getattr(cfg, name)}


def prepared_inputs(folder: Path) -> dict[str, str] | None:
    """``{field: SHA-256}`` of the input files prepared ``folder`` was built from: as
    :func:`prepare` recorded them, else (a folder prepared before it did) recomputed from the
    files it names when they still give the folder's key; None when they do not."""
    inputs = json.loads((Path(folder) / _INPUTS).read_text())
    if "files" in inputs:
        return inputs["files"]
    data = inputs["data"]
    paths = {name: data.get(name) for name in _PATH_FIELDS[1:] if data.get(name)}
    if not all(Path(path).is_file() for path in paths.values()):
        return None
    files = {name: file_digest(path) for name, path in paths.items()}
    return files if _content_key(data, files) == inputs["key"] else None


def dataset_folder(spec: DatasetSpec, data_overrides: dict[str, Any], data_root: Path, cache_dir: Path, rows: int = 0) -> Path:
    """Where :func:`prepare` keeps ``spec`` with these settings (derived CSVs are made; nothing else).

    The folder is keyed by content (:func:`dataset_key`), so two specs of the same data (Table 2's
    ``cloth_sport``, Table 4's ``ds100``, Table 5's ``ko100``) share one folder, hence one PSG
    and one trained run per config: the first spec to build it names it. A prepared folder
    records its key in ``inputs.json``.
    """
    key = dataset_key(data_config(spec, data_overrides, data_root, cache_dir, rows))
    for marker in sorted((cache_dir / "datasets").glob(f"*/{_INPUTS}")):
        if json.loads(marker.read_text()).get("key") == key:
            return marker.parent
    return cache_dir / "datasets" / f"{spec.name}-{key}"


def is_prepared(folder: Path) -> bool:
    """Whether :func:`prepare` finished ``folder``."""
    return (folder / _INPUTS).is_file()


def prepare(spec: DatasetSpec, data_overrides: dict[str, Any], data_root: Path, cache_dir: Path, rows: int = 0) -> Path:
    """A prepared dataset folder for ``spec`` (built once, then reused from the cache)."""
    folder = dataset_folder(spec, data_overrides, data_root, cache_dir, rows)
    if is_prepared(folder):
        return folder
    cfg = data_config(spec, data_overrides, data_root, cache_dir, rows)
    from imvae_jax.config import to_dict
    from imvae_jax.data.audit import audit
    from imvae_jax.data.cli import build
    from imvae_jax.data.schema import write_dataset

    splits = build(dataclasses.replace(cfg, dataset=str(folder)))
    write_dataset(splits, folder, audit=audit(splits))
    inputs = {"key": dataset_key(cfg), "spec": spec.name, "data": to_dict(cfg), "files": input_digests(cfg)}
    (folder / _INPUTS).write_text(json.dumps(inputs, indent=1, default=str))
    return folder


# ----------------------------------------------------------------------------- PSG


def pseudo_folder(dataset: Path, psg_overrides: dict[str, Any], cache_dir: Path) -> Path:
    """Where :func:`pseudo` keeps ``dataset`` with these PSG settings (nothing is run)."""
    from imvae_jax.config import to_dict

    key = digest({"dataset": str(dataset), "psg": to_dict(_config(psg_overrides).psg)})
    return cache_dir / "pseudo" / f"{dataset.name}-{key}"


def psg_reporter(name: str, epochs: int, log: Callable[[str], None], every_s: float = 60.0) -> Callable[[Any], None]:
    """A PSG ``progress`` callback that logs the last LightGCN epoch (loss, validation Recall@20)
    at most once per ``every_s`` seconds; the recall step's calls (users done) are not logged."""
    last = [time.perf_counter()]
    seen: dict[str, Any] = {}

    def report(record: Any) -> None:
        if not isinstance(record, dict):
            return
        seen.update(record)
        if time.perf_counter() - last[0] >= every_s:
            last[0] = time.perf_counter()
            recall = f", valid recall@20 {seen['recall@20']:.4f}" if "recall@20" in seen else ""
            log(f"PSG {name}: LightGCN epoch {record['epoch']} of at most {epochs}: loss {record['loss']:.4f}{recall}")

    return report


def pseudo(dataset: Path, psg_overrides: dict[str, Any], cache_dir: Path, log: Callable[[str], None] = lambda _: None) -> Path:
    """``dataset`` with ``pseudo_x``/``pseudo_y`` from the PSG (LightGCN or random), cached;
    a LightGCN run logs its progress about once a minute."""
    from imvae_jax.psg.pipeline import add_pseudo

    cfg = _config(psg_overrides).psg
    folder = pseudo_folder(dataset, psg_overrides, cache_dir)
    if not (folder / "test.parquet").is_file():
        log(f"PSG ({cfg.mode}) for {dataset.name} -> {folder}")
        started = time.perf_counter()
        # LightGCN checkpoints beside the cache: an interrupted PSG continues where it stopped
        add_pseudo(dataset, folder, cfg, run_dir=cache_dir / "psg_runs" / folder.name, resume=True,
                   progress=psg_reporter(dataset.name, cfg.epochs, log))
        log(f"PSG for {dataset.name} done in {time.perf_counter() - started:.0f} s")
    return folder


# ----------------------------------------------------------------------------- training

# every trained run also reports the authors' protocol (labelled): test after every epoch
TRAIN_DEFAULTS: dict[str, Any] = {"eval.report": "authors-max", "train.progress": False}
# and, for models with latents, the selected checkpoint with the same latents for every user
SAME_LATENTS = "same-latents"


def has_latents(overrides: dict[str, Any]) -> bool:
    """Whether the model these overrides make has latents to probe (not SASRec)."""
    return _config(overrides).model.variant != "sasrec"


def _add_probe(record: dict[str, Any], run_dir: Path, overrides: dict[str, Any]) -> bool:
    """Add the ``same-latents`` protocol (:mod:`imvae_jax.train.probe`) and each latent's spread
    to ``record`` when the model has latents and it is missing; whether it was added."""
    if SAME_LATENTS in record["protocols"] or not has_latents(overrides):
        return False
    from imvae_jax.train.probe import probe_run

    result = probe_run(run_dir)
    record["protocols"][SAME_LATENTS] = result["shared_latents"]
    record["latents"] = result["latents"]
    return True


def _device_kind() -> str:
    """``"NVIDIA H200"``, ``"cpu"``, ...: the kind of the first device."""
    import jax

    return jax.devices()[0].device_kind


def _devices() -> list | None:
    """One device on CPU (simulated CPU devices share the same cores: data parallelism over them
    only adds compile time); every device otherwise."""
    import jax

    return jax.devices()[:1] if jax.devices()[0].platform == "cpu" else None


def run_name(dataset: Path, overrides: dict[str, Any]) -> str:
    """The shared run folder's name: the dataset's and a hash of the resolved config."""
    from imvae_jax.config import to_dict

    return f"{dataset.name}-{digest(to_dict(_config({**TRAIN_DEFAULTS, **overrides, 'data.dataset': str(dataset)})))}"


# finished runs' records, committed with the code (``python -m experiments.store archive``): a
# fresh clone renders the measured tables from them instead of training again
ARCHIVE = Path(__file__).resolve().parent / "records"


def archive_key(spec: DatasetSpec, run_overrides: dict[str, Any], data_root: Path, cache_dir: Path, rows: int = 0) -> str:
    """What determines a trained run, without any path: the dataset's content key
    (:func:`dataset_key`) and the resolved config less its folder fields. Unlike the store's
    folder names (which hold the cache folder's path and the name of the first spec to build the
    data), it is the same on every machine and for every ``--cache-dir``: the archive's key."""
    from imvae_jax.config import to_dict

    data_overrides = {k: v for k, v in run_overrides.items() if k.startswith("data.")}
    config = to_dict(_config({**TRAIN_DEFAULTS, **run_overrides}))
    config["data"].pop("dataset", None)
    config["train"].pop("run_dir", None)
    return digest({"data": dataset_key(data_config(spec, data_overrides, data_root, cache_dir, rows)), "config": config})


def archived_elsewhere(spec: DatasetSpec, run_overrides: dict[str, Any], data_root: Path, cache_dir: Path, rows: int = 0) -> str | None:
    """Why the archive has no record under this run's :func:`archive_key` while it holds the same
    run (dataset and overrides) under another key: other input files (their SHA-256 there and
    here) or, with the same files, another resolved config (the code's defaults changed). None
    when the archive holds the key or no such twin."""
    key = archive_key(spec, run_overrides, data_root, cache_dir, rows)
    if (ARCHIVE / f"{key}.json").is_file():
        return None
    wanted = digest(run_overrides)
    here: dict[str, str] | None = None
    mtime = ARCHIVE.stat().st_mtime_ns if ARCHIVE.is_dir() else 0
    for stem, origin in _archive_index(str(ARCHIVE), mtime):
        if origin.get("dataset") != spec.name or digest(origin.get("overrides")) != wanted:
            continue
        there = origin.get("inputs")
        if there is None:
            return f"the archive holds it as {stem}, whose input files were not recorded"
        if here is None:
            data_overrides = {k: v for k, v in run_overrides.items() if k.startswith("data.")}
            here = input_digests(data_config(spec, data_overrides, data_root, cache_dir, rows))
        differ = [
            f"{name} {there.get(name, '-')[:12]} there, {here.get(name, '-')[:12]} here"
            for name in sorted(set(there) | set(here))
            if there.get(name) != here.get(name)
        ]
        if differ:
            return f"the archive holds it as {stem}, trained on other input files (SHA-256 {'; '.join(differ)})"
        return f"the archive holds it as {stem}, from the same input files but another resolved config (the code's defaults changed since)"
    return None


@functools.lru_cache(maxsize=4)
def _archive_index(folder: str, mtime_ns: int) -> tuple[tuple[str, dict[str, Any]], ...]:
    """``((key, archived_from), ...)`` of every archived record in ``folder`` (read again when
    the folder's ``mtime_ns`` changes)."""
    del mtime_ns  # part of the cache key only
    return tuple(
        (path.stem, json.loads(path.read_text()).get("archived_from") or {})
        for path in sorted(Path(folder).glob("*.json"))
    )


def is_trained(run_dir: Path, key: str | None = None) -> bool:
    """Whether the run kept in ``run_dir`` is finished: its ``record.json`` is there, or the
    committed archive (:data:`ARCHIVE`) holds its ``key`` (:func:`archive_key`); the archived
    record is then restored into ``run_dir`` (a finished run folder without checkpoints, as
    ``experiments.store merge`` makes)."""
    saved = run_dir / "record.json"
    if saved.is_file():
        return True
    archived = ARCHIVE / f"{key}.json"
    if key is None or not archived.is_file():
        return False
    record = json.loads(archived.read_text())
    run_dir.mkdir(parents=True, exist_ok=True)
    partial = saved.with_suffix(".json.tmp")
    partial.write_text(json.dumps({**record, "archived": True}, indent=1, default=str))
    partial.replace(saved)
    return True


def train(
    dataset: Path,
    overrides: dict[str, Any],
    cache_dir: Path,
    log: Callable[[str], None] = lambda _: None,
    restart: bool = False,
) -> dict[str, Any]:
    """Train one model (defaults + ``TRAIN_DEFAULTS`` + overrides) on ``dataset``; its run record.

    Runs are shared by every experiment: the run folder is ``cache_dir/train/<hash of the
    resolved config>`` (so Table 3's IM-VAE, Table 4's and 5's 100 % levels and Figure 3's default point
    are Table 2's IM-VAE run, trained once), and a finished run's record is kept there as
    ``record.json`` and returned as it is (``"reused": true``). Models with latents also get the
    ``same-latents`` protocol: the selected checkpoint with every user's latents replaced by
    their mean (:mod:`imvae_jax.train.probe`); equal to ``valid-selected`` = not personalised. A folder left by an interrupted
    run is resumed from its last checkpoint; ``restart`` deletes the folder and trains again.
    """
    from imvae_jax.runtime import cpu_description
    from imvae_jax.train.loop import run

    run_dir = cache_dir / "train" / run_name(dataset, overrides)
    cfg = _config({**TRAIN_DEFAULTS, **overrides, "data.dataset": str(dataset), "train.run_dir": str(run_dir)})
    saved = run_dir / "record.json"
    if restart and run_dir.exists():
        shutil.rmtree(run_dir)
    elif saved.is_file():
        record = json.loads(saved.read_text())
        if _add_probe(record, run_dir, overrides):  # a run recorded before the probe existed
            saved.write_text(json.dumps(record, indent=1, default=str))
        return {**record, "reused": True}
    started = time.perf_counter()
    results = run(cfg, resume=run_dir.is_dir(), devices=_devices(), log=log)
    protocols = {name: record["results"] for name, record in results["protocols"].items()}
    record = {
        "protocols": protocols,
        "wall_s": time.perf_counter() - started,  # this process only (see resumed_from_epoch)
        "resumed_from_epoch": results.get("resumed_from_epoch"),
        "run_dir": str(run_dir),
        "epochs_run": results.get("epochs_run"),
        "selected_epoch": results.get("selected_epoch"),
        "parameters": results.get("parameters"),
        "train_samples_per_s": results.get("train_samples_per_s"),
        "seconds_per_epoch": results.get("seconds_per_epoch"),  # where an epoch's time went
        "device": _device_kind(),  # what trained it (the wall time's hardware)
        "cpu": cpu_description(),  # the host: its model name alone can hide a 2x speed gap
        "finished": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
    }
    saved.write_text(json.dumps(record, indent=1, default=str))
    if _add_probe(record, run_dir, overrides):  # after the record is safe: a failed probe loses no training
        saved.write_text(json.dumps(record, indent=1, default=str))
    return {**record, "reused": False}


# ----------------------------------------------------------------------------- model-free


def score(dataset: Path, scorer: str, batch_size: int = 512, max_len: int = 20) -> dict[str, Any]:
    """A model-free scorer (popularity, target_popularity, item_order) on the test split of a prepared dataset."""
    import numpy as np

    from imvae_jax.data.batches import Batcher
    from imvae_jax.data.schema import read_dataset
    from imvae_jax.eval.baselines import ItemOrder, Popularity
    from imvae_jax.eval.groups import aggregate, group_masks
    from imvae_jax.eval.metrics import target_ranks
    from imvae_jax.eval.rows import rows_from_split

    started = time.perf_counter()
    splits = read_dataset(dataset)
    train_rows = rows_from_split(splits["train"])
    if scorer == "item_order":
        model = ItemOrder.fit(train_rows, "learned")
    else:
        model = Popularity.fit(train_rows, targets_only=scorer == "target_popularity")
    test = splits["test"]
    ranks, domains, rows, columns = [], [], [], {}
    for batch in Batcher(test, batch_size=batch_size, max_len=max_len, shuffle=False, seed=0).epoch(0):
        real = batch["mask"] > 0
        ranks.append(np.asarray(target_ranks(model.score(batch)))[real])
        domains.append(batch["target_domain"][real])
        rows.append(batch["row"][real])
    ranks_all, domains_all, row_ids = np.concatenate(ranks), np.concatenate(domains), np.concatenate(rows)
    table = test.table
    for name in ("tailed", "cold_start", "cold_start_kind", "target_in_train"):
        if name in table.column_names:
            columns[name] = table.column(name).to_numpy()[row_ids]
    masks = group_masks(columns)
    result = aggregate(ranks_all, domains_all, masks, ks=KS)
    return {"protocols": {"model-free": result}, "wall_s": time.perf_counter() - started}
