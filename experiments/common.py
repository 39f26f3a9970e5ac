"""What every experiment module shares: resolve the output folder, run, write the Markdown file."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from experiments import runner, spec
from experiments.tables import header


def command_line(name: str, quick: bool, seeds: int | None, out: Path | None) -> str:
    parts = ["imvae reproduce", name]
    if quick:
        parts.append("--quick")
    if seeds is not None:
        parts += ["--seeds", str(seeds)]
    if out is not None:
        parts += ["--out", str(out)]
    return " ".join(parts)


def reproduce(
    name: str,
    render: Callable[[spec.Experiment, dict[str, Any], Path], str],
    quick: bool = False,
    seeds: int | None = None,
    out: Path | None = None,
    force: bool = False,
    data_root: Path | None = None,
    experiment: spec.Experiment | None = None,
) -> Path:
    """Run experiment ``name`` and write ``<out>/<name>.md``; returns that path."""
    experiment = experiment or spec.load(name, quick=quick, seeds=seeds)
    out_dir = Path(out) if out is not None else runner.out_dir_for(experiment)
    kwargs = {"data_root": Path(data_root)} if data_root is not None else {}
    summary = runner.execute(experiment, out_dir, cache_dir=runner.DEFAULT_ROOT / "cache", force=force, **kwargs)
    text = f"# {experiment.title}\n\n" + header(summary, command_line(name, quick, seeds, out)) + "\n"
    text += render(experiment, summary, out_dir)
    path = out_dir / f"{name}.md"
    path.write_text(text)
    return path


def main(name: str, render: Callable, argv: list[str] | None = None) -> int:
    """``python -m experiments.<name> [--quick] [--seeds N] [--out DIR] [--force]``."""
    parser = argparse.ArgumentParser(prog=f"python -m experiments.{name}")
    add_arguments(parser)
    args = parser.parse_args(argv)
    path = reproduce(name, render, args.quick, args.seeds, args.out, args.force, args.data_root)
    print(path.read_text())
    print(f"written: {path}", file=sys.stderr)
    return 0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--quick", action="store_true", help="1 seed, 1 epoch, a slice of rows, tiny model")
    parser.add_argument("--seeds", type=int, help="seeds per (dataset, method) (default: the spec's)")
    parser.add_argument("--out", type=Path, help="output folder (default runs/experiments/NAME[-quick])")
    parser.add_argument("--force", action="store_true", help="rerun runs whose JSON record already exists")
    parser.add_argument("--data-root", type=Path, help="folder of the shared data (default $IMVAE_DATA or /work/shared/data)")
