"""Bar charts of an experiment's ``results.csv``: one panel per (dataset, domain), user groups on
the x axis, one bar per method (mean over seeds, error bar = std over seeds, ddof 0 as the tables).

    python -m experiments.plot runs/experiments/table2/results.csv --metric hr@10 \\
        --protocol valid-selected --out table2-hr10.png

Needs matplotlib (``pip install -e ".[plots]"``).
"""

from __future__ import annotations

import argparse
import csv
import math
import sys
from collections.abc import Sequence
from pathlib import Path

DEFAULT_GROUPS = ("all", "tailed", "cold_start")
MODEL_FREE = "model-free"  # scorers' protocol: shown under every protocol


def pyplot():
    """matplotlib's pyplot on the file-only Agg backend (no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, path: Path) -> Path:
    """Write ``fig`` to ``path`` (PNG, 110 dpi; folders made), close it; returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    pyplot().close(fig)
    return path


def seed_stats(
    path: Path, metric: str, protocol: str, groups: Sequence[str] = DEFAULT_GROUPS, methods: Sequence[str] | None = None
) -> dict[tuple[str, str, str, str], tuple[float, float, int]]:
    """``{(dataset, domain, group, method): (mean, std, seeds)}`` of ``metric`` (as fractions)
    under ``protocol`` (model-free scorers under theirs), from the rows of ``path``."""
    values: dict[tuple[str, str, str, str], list[float]] = {}
    with Path(path).open(newline="") as handle:
        for row in csv.DictReader(handle):
            if row["metric"] != metric or row["protocol"] not in (protocol, MODEL_FREE) or row["group"] not in groups:
                continue
            if methods is not None and row["method"] not in methods:
                continue
            if row["value"] == "":
                continue
            values.setdefault((row["dataset"], row["domain"], row["group"], row["method"]), []).append(float(row["value"]))
    if not values:
        raise ValueError(f"{path}: no rows with metric {metric!r}, protocol {protocol!r} and groups {list(groups)}")
    out = {}
    for key, vs in values.items():
        mean = sum(vs) / len(vs)
        out[key] = (mean, math.sqrt(sum((v - mean) ** 2 for v in vs) / len(vs)), len(vs))
    return out


def plot(
    stats: dict[tuple[str, str, str, str], tuple[float, float, int]],
    out: Path,
    metric: str,
    protocol: str,
    groups: Sequence[str] = DEFAULT_GROUPS,
) -> Path:
    """Write the bar chart of :func:`seed_stats` to ``out`` (PNG); returns it."""
    plt = pyplot()
    panels = sorted({(d, x) for d, x, _, _ in stats})
    methods = list(dict.fromkeys(m for *_, m in stats))  # first-seen order: the file's
    shown = [g for g in groups if any(k[2] == g for k in stats)]
    fig, axes = plt.subplots(1, len(panels), figsize=(4.5 * len(panels), 3.6 + 0.3 * math.ceil(len(methods) / 4)), squeeze=False)
    width = 0.8 / max(len(methods), 1)
    for ax, (dataset, domain) in zip(axes[0], panels):
        for i, method in enumerate(methods):
            cells = [stats.get((dataset, domain, g, method)) for g in shown]
            xs = [j + (i - (len(methods) - 1) / 2) * width for j in range(len(shown))]
            ax.bar(
                xs, [100 * c[0] if c else 0.0 for c in cells], width,
                yerr=[100 * c[1] if c else 0.0 for c in cells], capsize=2, label=method,
            )
        ax.set_xticks(range(len(shown)), shown, fontsize=8, rotation=15)
        ax.set_title(f"{dataset}, domain {domain}")
        ax.set_ylabel(f"{metric} (%)")
    handles, labels = axes[0][0].get_legend_handles_labels()
    rows = math.ceil(len(methods) / 4)
    fig.legend(handles, labels, loc="lower center", ncol=min(len(methods), 4), fontsize=8, frameon=False)
    fig.suptitle(f"{metric}, {protocol}: mean ± std over seeds", fontsize=10)
    fig.tight_layout(rect=(0, 0.07 * rows, 1, 1))
    return save_figure(fig, out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m experiments.plot", description=__doc__.split("\n")[0])
    parser.add_argument("csv", type=Path, help="an experiment's results.csv")
    parser.add_argument("--metric", default="hr@10")
    parser.add_argument("--protocol", default="valid-selected", help="valid-selected | authors-max | same-latents")
    parser.add_argument("--groups", default=",".join(DEFAULT_GROUPS), help="comma-separated user groups")
    parser.add_argument("--methods", help="comma-separated methods (default: all in the file)")
    parser.add_argument("--out", type=Path, required=True, help="PNG to write")
    args = parser.parse_args(argv)
    groups = [g for g in args.groups.split(",") if g]
    methods = [m for m in args.methods.split(",") if m] if args.methods else None
    stats = seed_stats(args.csv, args.metric, args.protocol, groups, methods)
    print(plot(stats, args.out, args.metric, args.protocol, groups))
    return 0


if __name__ == "__main__":
    sys.exit(main())
