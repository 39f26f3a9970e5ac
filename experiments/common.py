"""What every experiment module shares: the command line, the output folder, the Markdown file."""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from experiments import engine, runner, spec
from experiments.tables import header

Render = Callable[[spec.Experiment, dict[str, Any], Path], str]


def command_line(
    name: str,
    quick: bool = False,
    seeds: int | None = None,
    out: Path | None = None,
    datasets: list[str] | None = None,
    methods: list[str] | None = None,
    sets: list[str] | None = None,
    only_seeds: list[int] | None = None,
    parallel: int = 1,
    finished_only: bool = False,
) -> str:
    """The ``imvae reproduce`` command that repeats a run (written into its Markdown file)."""
    parts = ["imvae", "reproduce", name]
    if quick:
        parts.append("--quick")
    if seeds is not None:
        parts += ["--seeds", str(seeds)]
    if datasets:
        parts += ["--datasets", ",".join(datasets)]
    if methods:
        parts += ["--methods", ",".join(methods)]
    for item in sets or ():
        parts += ["--set", item]
    if only_seeds:
        parts += ["--only-seeds", ",".join(map(str, only_seeds))]
    if parallel > 1:
        parts += ["--parallel", str(parallel)]
    if finished_only:
        parts.append("--finished-only")
    if out is not None:
        parts += ["--out", str(out)]
    return shlex.join(parts)


def reproduce(
    name: str,
    render: Render,
    quick: bool = False,
    seeds: int | None = None,
    out: Path | None = None,
    force: bool = False,
    data_root: Path | None = None,
    experiment: spec.Experiment | None = None,
    cache_dir: Path | None = None,
    datasets: list[str] | None = None,
    methods: list[str] | None = None,
    sets: list[str] | None = None,
    status: bool = False,
    only_seeds: list[int] | None = None,
    parallel: int = 1,
    finished_only: bool = False,
) -> Path:
    """Run experiment ``name`` and write ``<out>/<name>.md``; returns that path.

    ``status``: train nothing; write where each run stands to ``<out>/status.md`` and return that.

    ``datasets``/``methods`` restrict the spec's; ``sets`` (``section.key=value``) override every
    run after the method's own overrides (a reduced budget: ``train.epochs=5``, ``psg.epochs=50``).
    ``only_seeds`` runs only those seeds of the spec's (model-free scorers have seed 0): to split
    one table's runs across processes or machines; a later call without it reuses them all.
    ``cache_dir`` (default ``runs/experiments/cache``) holds the prepared datasets and PSG
    outputs, shared by every experiment that uses the same data and PSG settings.
    ``parallel``: train the pending runs in that many worker processes first
    (:mod:`experiments.parallel`), then reuse them all here and render.
    ``finished_only``: train nothing; render from the runs already finished (here or in the
    shared store) and name the ones left out in the header (a table mid-way, seeds per method).
    """
    if experiment is None:
        experiment = spec.load(
            name, quick=quick, seeds=seeds, only_datasets=datasets, only_methods=methods, sets=spec.parse_sets(sets)
        )
    out_dir = Path(out) if out is not None else runner.out_dir_for(experiment)
    kwargs = {"data_root": Path(data_root)} if data_root is not None else {}
    cache_dir = Path(cache_dir) if cache_dir is not None else runner.DEFAULT_ROOT / "cache"
    runs = None
    if only_seeds is not None:
        outside = sorted(set(only_seeds) - set(range(experiment.seeds)))
        if outside:
            raise spec.SpecError(f"--only-seeds {outside}: {experiment.name} runs seeds 0..{experiment.seeds - 1} (see --seeds)")
        runs = [run for run in experiment.runs() if run.seed in only_seeds]
    if status:
        out_dir.mkdir(parents=True, exist_ok=True)
        path = out_dir / "status.md"
        path.write_text(runner.status(experiment, out_dir, cache_dir, workers=parallel, runs=runs, **kwargs))
        return path
    missing: list[str] = []
    if finished_only:
        if parallel > 1 or force:
            raise spec.SpecError("--finished-only trains nothing: drop --parallel and --force")
        every = runs if runs is not None else experiment.runs()
        data_root = kwargs.get("data_root", engine.DATA_ROOT)
        runs = [r for r in every if r.method.scorer or runner.is_finished(experiment, r, out_dir, cache_dir, data_root)]
        missing = [r.run_id for r in every if r not in runs]
    if parallel > 1:
        if force:
            raise spec.SpecError("--force with --parallel: delete the runs to redo, or run without --parallel")
        from experiments.parallel import train_in_workers

        train_in_workers(
            name, experiment, runs if runs is not None else experiment.runs(), parallel, out_dir, cache_dir,
            kwargs.get("data_root", engine.DATA_ROOT), sets or (),
        )
    summary = runner.execute(experiment, out_dir, cache_dir=cache_dir, force=force, runs=runs, **kwargs)
    if finished_only:
        summary["not_trained"] = missing
        (out_dir / "summary.json").write_text(json.dumps(summary, indent=1, default=str))
    command = command_line(name, quick, seeds, out, datasets, methods, sets, only_seeds, parallel, finished_only)
    text = f"# {experiment.title}\n\n" + header(summary, command, experiment) + "\n"
    text += render(experiment, summary, out_dir)
    path = out_dir / f"{name}.md"
    path.write_text(text)
    return path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--quick", action="store_true", help="1 seed, 1 epoch, a slice of rows, tiny model")
    parser.add_argument("--seeds", type=int, help="seeds per (dataset, method) (default: the spec's)")
    parser.add_argument("--datasets", type=_names, help="comma-separated subset of the spec's datasets")
    parser.add_argument("--methods", type=_names, help="comma-separated subset of the spec's methods")
    parser.add_argument(
        "--set", dest="sets", action="append", metavar="SECTION.KEY=VALUE",
        help="override for every run, after the method's (repeatable), e.g. --set train.epochs=5",
    )
    parser.add_argument("--out", type=Path, help="output folder (default runs/experiments/NAME[-quick])")
    parser.add_argument(
        "--only-seeds", type=_seeds, metavar="I,J",
        help="run only these seeds (0-based) of the spec's, e.g. to split a table across processes or machines",
    )
    parser.add_argument(
        "--parallel", type=_workers, default=1, metavar="N",
        help="train the pending runs in N worker processes at once (each pinned to its share of the CPU "
        "cores; on a GPU they share it), then render as usual",
    )
    parser.add_argument(
        "--finished-only", action="store_true",
        help="train nothing: render from the runs already finished; the header names those left out",
    )
    parser.add_argument("--force", action="store_true", help="rerun runs whose JSON record already exists")
    parser.add_argument("--status", action="store_true", help="train nothing: show where each run stands and the time left")
    parser.add_argument("--data-root", type=Path, help="folder of the shared data (default $IMVAE_SHARED_DATA or ../shared/data)")
    parser.add_argument("--cache-dir", type=Path, help="prepared datasets and PSG outputs (default runs/experiments/cache)")


def _names(text: str) -> list[str]:
    return [n.strip() for n in text.split(",") if n.strip()]


def _workers(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"--parallel takes a number of worker processes >= 1, got {text!r}")
    return value


def _seeds(text: str) -> list[int]:
    try:
        return sorted({int(n) for n in _names(text)})
    except ValueError:
        raise argparse.ArgumentTypeError(f"--only-seeds takes comma-separated integers, got {text!r}") from None


def options(args: argparse.Namespace) -> dict[str, Any]:
    """The keyword arguments of ``reproduce`` from parsed :func:`add_arguments` options."""
    return {
        "quick": args.quick, "seeds": args.seeds, "out": args.out, "force": args.force, "data_root": args.data_root,
        "cache_dir": args.cache_dir, "datasets": args.datasets, "methods": args.methods, "sets": args.sets,
        "status": args.status, "only_seeds": args.only_seeds, "parallel": args.parallel,
        "finished_only": args.finished_only,
    }


def main(name: str, reproduce_fn: Callable[..., Path], argv: list[str] | None = None) -> int:
    """``python -m experiments.<name> [options of imvae reproduce]``."""
    if argv is None:  # a real command line: huge pages for XLA's temporaries (imvae_jax.runtime)
        from experiments.parallel import pin_from_env
        from imvae_jax.runtime import use_compilation_cache, use_huge_pages

        pin_from_env()  # a worker of --parallel: its share of the cores, before any thread starts
        use_huge_pages()
        use_compilation_cache()
    parser = argparse.ArgumentParser(prog=f"python -m experiments.{name}")
    add_arguments(parser)
    try:
        path = reproduce_fn(**options(parser.parse_args(argv)))
    except KeyboardInterrupt:
        print(f"{name}: interrupted; a repeated command resumes every unfinished run from its last checkpoint", file=sys.stderr)
        return 130
    except spec.SpecError as error:
        print(f"python -m experiments.{name}: error: {error}", file=sys.stderr)
        return 2
    print(path.read_text())
    print(f"written: {path}", file=sys.stderr)
    return 0
