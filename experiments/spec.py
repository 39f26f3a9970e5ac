"""Experiment specs: one YAML file per paper table/figure, expanded into runs.

A spec (``experiments/configs/<name>.yaml``) has

``title``      the heading of the written tables
``seeds``      runs per (dataset, method); seed i sets ``train.seed`` (and nothing else)
``base``       config overrides (``section.key: value``) for every trained run
``datasets``   name -> ``{source: authors|synthetic, train, test, derive, data, psg}``:
               ``train``/``test`` are paths under the data root (``/work/shared/data`` or
               ``$IMVAE_DATA``); ``derive`` makes a changed copy first (``density``,
               ``overlap``: :mod:`experiments.derive`); ``data``/``psg`` are overrides of
               those sections for this dataset only
``methods``    name -> ``{label, paper, overrides}`` (a model trained by the engine) or
               ``{label, paper, scorer: popularity|target_popularity|item_order}`` (model-free)
``quick``      the ``--quick`` changes: ``seeds``, ``datasets``/``methods`` (subsets, in
               order), ``rows`` (users are sliced until the training file has this many
               rows), ``base`` (more overrides), ``data`` (overrides for every dataset)

Override order for a trained run: base, quick.base, dataset.data/psg, quick.data, method
overrides, the command line's ``--set`` (a reduced budget), then ``train.seed``. ``psg.*``
keys choose the pseudo-sequence cache entry, ``data.*`` keys the prepared dataset.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path
from typing import Any

import yaml

CONFIG_DIR = Path(__file__).resolve().parent / "configs"
SCORERS = ("popularity", "target_popularity", "item_order")


class SpecError(ValueError):
    """Bad input to an experiment: a malformed spec (names the file and the key), a flag that
    does not fit it, or a stored record made with other settings. The command line prints the
    message alone (no traceback) and exits with status 2."""


@dataclasses.dataclass(frozen=True)
class DatasetSpec:
    name: str
    source: str  # "authors" | "synthetic"
    train: str = ""  # relative to the data root
    test: str = ""
    derive: tuple[tuple[str, Any], ...] = ()  # (("density", 0.25),) ...
    overrides: tuple[tuple[str, Any], ...] = ()  # data.* / psg.* overrides

    def derive_dict(self) -> dict[str, Any]:
        return dict(self.derive)


@dataclasses.dataclass(frozen=True)
class Method:
    name: str
    label: str
    paper: str | None = None  # the paper's column this method stands beside
    scorer: str | None = None  # model-free scorer, or None for a trained model
    overrides: tuple[tuple[str, Any], ...] = ()


@dataclasses.dataclass(frozen=True)
class Run:
    experiment: str
    dataset: DatasetSpec
    method: Method
    seed: int
    overrides: tuple[tuple[str, Any], ...]  # merged, in application order (last wins)

    @property
    def run_id(self) -> str:
        return f"{self.dataset.name}__{self.method.name}__seed{self.seed}"

    def data_overrides(self) -> dict[str, Any]:
        return {k: v for k, v in self.overrides if k.startswith("data.")}

    def psg_overrides(self) -> dict[str, Any]:
        return {k: v for k, v in self.overrides if k.startswith("psg.")}

    def train_overrides(self) -> dict[str, Any]:
        """What a trained run is made with: every override except psg.* (the PSG makes its data)."""
        return {k: v for k, v in self.overrides if not k.startswith("psg.")}

    def engine_overrides(self) -> dict[str, Any]:
        """Every override except data.* and psg.* (those are applied when the data is made)."""
        return {k: v for k, v in self.overrides if not k.startswith(("data.", "psg."))}


@dataclasses.dataclass(frozen=True)
class Experiment:
    name: str
    title: str
    seeds: int
    datasets: tuple[DatasetSpec, ...]
    methods: tuple[Method, ...]
    base: tuple[tuple[str, Any], ...]
    quick: bool
    rows: int = 0  # quick slice: training rows kept per authors' dataset (0 = all)
    extra: tuple[tuple[str, Any], ...] = ()  # experiment-specific keys (e.g. figure 3's sweeps)
    overrides: tuple[tuple[str, Any], ...] = ()  # the command line's --set (after the method's)

    def runs(self) -> list[Run]:
        out = []
        for dataset in self.datasets:
            for method in self.methods:
                seeds = [0] if method.scorer else range(self.seeds)
                for seed in seeds:
                    merged = (*self.base, *dataset.overrides, *method.overrides, *self.overrides, ("train.seed", seed))
                    out.append(Run(self.name, dataset, method, seed, merged))
        return out


def _pairs(mapping: Any, where: str) -> tuple[tuple[str, Any], ...]:
    if mapping is None:
        return ()
    if not isinstance(mapping, dict):
        raise SpecError(f"{where}: expected a mapping of 'section.key: value', got {mapping!r}")
    for key in mapping:
        if not isinstance(key, str) or "." not in key:
            raise SpecError(f"{where}: key {key!r} is not 'section.key'")
    return tuple(mapping.items())


def _prefixed(mapping: Any, prefix: str, where: str) -> tuple[tuple[str, Any], ...]:
    if mapping is None:
        return ()
    if not isinstance(mapping, dict):
        raise SpecError(f"{where}: expected a mapping, got {mapping!r}")
    return tuple((f"{prefix}.{k}", v) for k, v in mapping.items())


def _subset(names: Any, available: dict[str, Any], where: str) -> list[str]:
    if names is None:
        return list(available)
    unknown = [n for n in names if n not in available]
    if unknown:
        raise SpecError(f"{where}: unknown name(s) {unknown}; known: {list(available)}")
    return list(names)


def parse_sets(items: list[str] | None) -> tuple[tuple[str, Any], ...]:
    """``["train.epochs=5", "model.mlp_hidden=[8,16,8]"]`` -> pairs (values parsed as YAML)."""
    out = []
    for item in items or ():
        key, sep, value = item.partition("=")
        if not sep or "." not in key:
            raise SpecError(f"--set {item!r}: expected section.key=value")
        out.append((key.strip(), yaml.safe_load(value)))
    return tuple(out)


def _narrow(names: list[str], wanted: list[str] | None, where: str) -> list[str]:
    """``names`` restricted to ``wanted`` (in ``names``' order); unknown wanted names are errors."""
    if not wanted:
        return names
    unknown = [n for n in wanted if n not in names]
    if unknown:
        raise SpecError(f"{where}: unknown or excluded name(s) {unknown}; available: {names}")
    return [n for n in names if n in wanted]


def load(
    name_or_path: str | Path,
    quick: bool = False,
    seeds: int | None = None,
    only_datasets: list[str] | None = None,
    only_methods: list[str] | None = None,
    sets: tuple[tuple[str, Any], ...] = (),
) -> Experiment:
    """Read a spec by name (``table2``) or path, applying ``quick``, a ``seeds`` override,
    subsets ``only_datasets``/``only_methods`` (after quick's) and ``sets`` (``--set``)."""
    path = Path(name_or_path)
    if not path.suffix:
        path = CONFIG_DIR / f"{name_or_path}.yaml"
    if not path.is_file():
        raise SpecError(f"no experiment spec {path}")
    raw = yaml.safe_load(path.read_text()) or {}
    known = {"title", "seeds", "base", "datasets", "methods", "quick", "sweeps", "levels"}
    unknown = set(raw) - known
    if unknown:
        raise SpecError(f"{path}: unknown key(s) {sorted(unknown)}; known: {sorted(known)}")
    quick_raw = (raw.get("quick") or {}) if quick else {}
    datasets_raw = raw.get("datasets") or {}
    methods_raw = raw.get("methods") or {}
    if not datasets_raw or not methods_raw:
        raise SpecError(f"{path}: 'datasets' and 'methods' must not be empty")

    quick_data = _prefixed(quick_raw.get("data"), "data", f"{path}: quick.data")
    datasets = []
    for name in _narrow(_subset(quick_raw.get("datasets"), datasets_raw, f"{path}: quick.datasets"), only_datasets, f"{path}: --datasets"):
        d = datasets_raw[name] or {}
        where = f"{path}: datasets.{name}"
        source = d.get("source", "authors")
        if source not in ("authors", "synthetic"):
            raise SpecError(f"{where}.source: {source!r} is not 'authors' or 'synthetic'")
        if source == "authors" and not (d.get("train") and d.get("test")):
            raise SpecError(f"{where}: an authors' dataset needs 'train' and 'test'")
        overrides = (
            *_prefixed(d.get("data"), "data", f"{where}.data"),
            *_prefixed(d.get("psg"), "psg", f"{where}.psg"),
            *quick_data,
        )
        derive = d.get("derive") or {}
        bad = set(derive) - {"density", "overlap"}
        if bad:
            raise SpecError(f"{where}.derive: unknown key(s) {sorted(bad)}")
        datasets.append(DatasetSpec(name, source, d.get("train", ""), d.get("test", ""), tuple(derive.items()), overrides))

    methods = []
    for name in _narrow(_subset(quick_raw.get("methods"), methods_raw, f"{path}: quick.methods"), only_methods, f"{path}: --methods"):
        m = methods_raw[name] or {}
        where = f"{path}: methods.{name}"
        scorer = m.get("scorer")
        if scorer is not None and scorer not in SCORERS:
            raise SpecError(f"{where}.scorer: {scorer!r} is not one of {SCORERS}")
        methods.append(Method(name, m.get("label", name), m.get("paper"), scorer, _pairs(m.get("overrides"), f"{where}.overrides")))

    base = (*_pairs(raw.get("base"), f"{path}: base"), *_pairs(quick_raw.get("base"), f"{path}: quick.base"))
    n_seeds = int(seeds if seeds is not None else quick_raw.get("seeds", raw.get("seeds", 1)))
    if n_seeds < 1:
        raise SpecError(f"{path}: seeds must be >= 1, got {n_seeds}")
    extra = tuple((k, raw[k]) for k in ("sweeps", "levels") if k in raw)
    if quick and "sweeps" in quick_raw:
        extra = tuple((k, v) for k, v in extra if k != "sweeps") + (("sweeps", quick_raw["sweeps"]),)
    return Experiment(
        name=path.stem,
        title=str(raw.get("title", path.stem)),
        seeds=n_seeds,
        datasets=tuple(datasets),
        methods=tuple(methods),
        base=base,
        quick=quick,
        rows=int(quick_raw.get("rows", 0)),
        extra=extra,
        overrides=tuple(sets),
    )


def digest(payload: Any) -> str:
    """A short stable hash of a JSON-able payload (cache keys)."""
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:12]
