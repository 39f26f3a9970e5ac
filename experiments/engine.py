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
import importlib
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from experiments import derive
from experiments.spec import DatasetSpec, digest

DATA_ROOT = Path(os.environ.get("IMVAE_DATA", "/work/shared/data"))
KS = (10,)
# groups restricted to the test rows whose target is NOT inside the user's training row
CLEAN_SUFFIX = "_not_in_train"
CLEANED_GROUPS = ("tailed", "cold_start", "cold_start_other", "no_history")


class EngineError(RuntimeError):
    """A stage of the library is missing or failed (names the stage and what to do)."""


# ----------------------------------------------------------------------------- data


def _source_files(spec: DatasetSpec, data_root: Path, cache_dir: Path, rows: int, seed: int) -> tuple[Path, Path]:
    """The train/test CSVs to read: the originals, or derived copies (slice, density, overlap)."""
    train, test = data_root / spec.train, data_root / spec.test
    for path in (train, test):
        if not path.is_file():
            raise EngineError(f"dataset {spec.name}: file {path} not found (set $IMVAE_DATA or --data-root)")
    change = spec.derive_dict()
    if not rows and not change:
        return train, test
    key = digest({"train": str(train), "test": str(test), "rows": rows, "derive": change, "seed": seed})
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
    from imvae_jax.config import Config, apply_overrides

    cfg = apply_overrides(Config(), [f"{k}={json.dumps(v)}" for k, v in data_overrides.items()]).data
    changes: dict[str, Any] = {"source": spec.source}
    if spec.source == "authors":
        train, test = _source_files(spec, data_root, cache_dir, rows, cfg.seed)
        changes.update(train_path=str(train), test_path=str(test))
    return dataclasses.replace(cfg, **changes)


def prepare(spec: DatasetSpec, data_overrides: dict[str, Any], data_root: Path, cache_dir: Path, rows: int = 0) -> Path:
    """A prepared dataset folder for ``spec`` (built once, then reused from the cache)."""
    cfg = data_config(spec, data_overrides, data_root, cache_dir, rows)
    from imvae_jax.config import to_dict

    key = digest({"data": to_dict(cfg), "files": _file_ids(cfg)})
    folder = cache_dir / "datasets" / f"{spec.name}-{key}"
    if (folder / "test.parquet").is_file():
        return folder
    from imvae_jax.data.audit import audit
    from imvae_jax.data.cli import build
    from imvae_jax.data.schema import write_dataset

    splits = build(dataclasses.replace(cfg, dataset=str(folder)))
    write_dataset(splits, folder, audit=audit(splits))
    return folder


def _file_ids(cfg) -> dict[str, Any]:
    """Size and mtime of the input files: a changed input file invalidates the cache."""
    out = {}
    for name in ("train_path", "test_path"):
        path = getattr(cfg, name, "")
        if path:
            stat = Path(path).stat()
            out[name] = [stat.st_size, int(stat.st_mtime)]
    return out


# ----------------------------------------------------------------------------- PSG


def _find(*candidates: str) -> Any:
    """The first importable ``module:function`` among candidates, or None."""
    for candidate in candidates:
        module_name, _, attr = candidate.partition(":")
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as e:
            if e.name and module_name.startswith(e.name.split(".")[0]) and e.name in module_name:
                continue
            raise
        if hasattr(module, attr):
            return getattr(module, attr)
    return None


def pseudo(dataset: Path, psg_overrides: dict[str, Any], cache_dir: Path) -> Path:
    """``dataset`` with ``pseudo_x``/``pseudo_y`` from the PSG (LightGCN or random), cached."""
    from imvae_jax.config import Config, apply_overrides, to_dict

    cfg = apply_overrides(Config(), [f"{k}={json.dumps(v)}" for k, v in psg_overrides.items()])
    key = digest({"dataset": str(dataset), "psg": to_dict(cfg.psg)})
    folder = cache_dir / "pseudo" / f"{dataset.name}-{key}"
    if (folder / "test.parquet").is_file():
        return folder
    api = _find("imvae_jax.psg.api:add_pseudo", "imvae_jax.psg.pipeline:add_pseudo", "imvae_jax.psg.recall:add_pseudo_dataset")
    if api is not None:
        api(dataset, folder, cfg.psg)
        return folder
    if _find("imvae_jax.psg.cli:register") is None:
        raise EngineError("imvae_jax.psg is not installed yet: no PSG API and no `imvae psg`")
    overrides = [f"{k}={json.dumps(v)}" for k, v in psg_overrides.items()]
    _cli(["psg", str(dataset), "--out", str(folder), *sum((["--set", o] for o in overrides), [])])
    return folder


# ----------------------------------------------------------------------------- training


def _cli(argv: list[str]) -> None:
    command = [sys.executable, "-m", "imvae_jax", *argv]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        raise EngineError(f"`imvae {' '.join(argv)}` failed ({done.returncode}):\n{done.stderr[-3000:]}")


def train(dataset: Path, overrides: dict[str, Any], run_dir: Path) -> dict[str, Any]:
    """Train one model (config = defaults + overrides) on ``dataset``; its run record."""
    from imvae_jax.config import Config, apply_overrides

    items = {**overrides, "data.dataset": str(dataset), "train.run_dir": str(run_dir)}
    cfg = apply_overrides(Config(), [f"{k}={json.dumps(v)}" for k, v in items.items()])
    if run_dir.exists():
        shutil.rmtree(run_dir)
    started = time.perf_counter()
    api = _find("imvae_jax.train.api:train_and_evaluate", "imvae_jax.train.api:run", "imvae_jax.train.loop:run")
    if api is not None:
        results = api(cfg)
    else:
        if _find("imvae_jax.train.cli:register") is None:
            raise EngineError("imvae_jax.train is not installed yet: no training API and no `imvae run`")
        from imvae_jax.config import save

        run_dir.mkdir(parents=True, exist_ok=True)
        save(cfg, run_dir / "requested_config.yaml")
        _cli(["run", "--config", str(run_dir / "requested_config.yaml")])
        results = json.loads((run_dir / "results.json").read_text())
    return {"protocols": _protocols(results), "wall_s": time.perf_counter() - started, "run_dir": str(run_dir)}


def _protocols(results: Any) -> dict[str, Any]:
    """``{protocol: result}`` from what the training engine returned (results.json layout)."""
    if isinstance(results, dict) and "protocols" in results:
        return {p: (r["results"] if "results" in r else r) for p, r in results["protocols"].items()}
    if isinstance(results, dict) and "results" in results and "protocol" in results:
        return {results["protocol"]: results["results"]}
    if isinstance(results, dict) and all(k in ("valid-selected", "authors-max") for k in results):
        return {p: (r["results"] if isinstance(r, dict) and "results" in r else r) for p, r in results.items()}
    raise EngineError(f"unrecognised training results layout: keys {sorted(results)[:10]}")


# ----------------------------------------------------------------------------- model-free


def clean_masks(masks: dict[str, Any]) -> dict[str, Any]:
    """Add ``<group>_not_in_train`` (group and target not in the user's training row)."""
    if "target_not_in_train" not in masks:
        return masks
    clean = masks["target_not_in_train"]
    return {**masks, **{f"{g}{CLEAN_SUFFIX}": masks[g] & clean for g in CLEANED_GROUPS if g in masks}}


def score(dataset: Path, scorer: str, batch_size: int = 512, max_len: int = 20) -> dict[str, Any]:
    """A model-free scorer (popularity, item_order) on the test split of a prepared dataset."""
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
    model = Popularity.fit(train_rows) if scorer == "popularity" else ItemOrder.fit(train_rows, "learned")
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
    masks = clean_masks(group_masks(columns))
    result = aggregate(ranks_all, domains_all, masks, ks=KS)
    return {"protocols": {"model-free": result}, "wall_s": time.perf_counter() - started}
