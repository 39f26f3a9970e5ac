"""Figure 3: sensitivity of HR@10 to T, lambda_a and lambda_t on Cloth-Sport, per user group.

Each sweep of ``configs/figure3.yaml`` varies one setting with the others fixed as in the
paper; a point shared by two sweeps (e.g. T = 20 and lambda_a = 0.005) is trained once.
Writes ``figure3.png`` (rows: T, lambda_a, lambda_t; columns: Cloth, Sport; one line per
user group, error bars = std over seeds), and ``figure3.md`` with the same numbers. The paper
prints no numbers for this figure, only the grids and its stated optima
(:data:`experiments.paper_numbers.FIGURE3_STATED_BEST`).

Run: ``imvae reproduce figure3 [--quick] [--seeds N] [--out DIR]`` or ``python -m experiments.figure3``.
"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path
from typing import Any

from experiments import common, paper_numbers as paper, spec
from experiments.runner import cell

NAME = "figure3"
GROUPS = (("tailed", "tailed"), ("cold_start", "cold-start"), ("all", "all"))
PROTOCOL = "valid-selected"


def sweep_points(sweeps: dict[str, Any]) -> list[tuple[str, Any, str, tuple[tuple[str, Any], ...]]]:
    """``(sweep, value, method name, overrides)`` for every point; identical configs share a name."""
    points, seen = [], {}
    for sweep, entry in sweeps.items():
        for value in entry["values"]:
            overrides = {**entry.get("fixed", {}), **{k: value for k in entry["keys"]}}
            key = tuple(sorted(overrides.items()))
            name = seen.setdefault(key, f"{sweep}={value}")
            points.append((sweep, value, name, tuple(sorted(overrides.items()))))
    return points


def select_points(sweeps: dict[str, Any], chosen: list[str]) -> dict[str, Any]:
    """``sweeps`` narrowed to the points named in ``chosen`` (``"T=10"``, ``"lambda_a=0.003"``).

    A point may be named by any sweep it belongs to (``lambda_a=0.005`` is also ``T=20``) and
    stays in every sweep it belongs to; an unknown name is an error listing the valid ones."""
    points = sweep_points(sweeps)
    aliases = {f"{sweep}={value}" for sweep, value, _, _ in points} | {name for _, _, name, _ in points}
    unknown = sorted(set(chosen) - aliases)
    if unknown:
        raise spec.SpecError(f"figure3: unknown sweep points {unknown}; valid: {sorted(aliases)}")
    wanted = {name for sweep, value, name, _ in points if f"{sweep}={value}" in chosen or name in chosen}
    keep = {(sweep, value) for sweep, value, name, _ in points if name in wanted}  # shared points in every sweep
    narrowed = {}
    for sweep, entry in sweeps.items():
        values = [v for v in entry["values"] if (sweep, v) in keep]
        if values:
            narrowed[sweep] = {**entry, "values": values}
    return narrowed


def experiment(
    quick: bool = False,
    seeds: int | None = None,
    datasets: list[str] | None = None,
    sets: tuple[tuple[str, Any], ...] = (),
    points: list[str] | None = None,
) -> spec.Experiment:
    """The figure's spec with one method per distinct sweep point (``points``: a subset by name)."""
    base = spec.load(NAME, quick=quick, seeds=seeds, only_datasets=datasets, sets=sets)
    sweeps = dict(base.extra)["sweeps"]
    if points:
        sweeps = select_points(sweeps, points)
        base = dataclasses.replace(base, extra=tuple((k, v) for k, v in base.extra if k != "sweeps") + (("sweeps", sweeps),))
    methods, names = [], set()
    for _, _, name, overrides in sweep_points(sweeps):
        if name not in names:
            names.add(name)
            methods.append(spec.Method(name, name, None, None, (*base.methods[0].overrides, *overrides)))
    return dataclasses.replace(base, methods=tuple(methods))


def plot(summary: dict[str, Any], sweeps: dict[str, Any], dataset: str, path: Path) -> None:
    from experiments.plot import pyplot, save_figure

    plt = pyplot()
    points = sweep_points(sweeps)
    height = 3.2 * len(sweeps)
    fig, axes = plt.subplots(len(sweeps), 2, figsize=(10, height), squeeze=False)
    legend: dict[str, Any] = {}  # group label -> line handle, over all panels
    for row, sweep in enumerate(sweeps):
        mine = [(v, n) for s, v, n, _ in points if s == sweep]
        for col, (domain, label) in enumerate((("x", "Cloth"), ("y", "Sport"))):
            ax = axes[row][col]
            plotted: set[float] = set()
            for color, (group, group_label) in enumerate(GROUPS):
                xs, ys, es = [], [], []
                for value, name in mine:
                    c = cell(summary, dataset, name, PROTOCOL, domain, group, "hr@10")
                    if c and c.get("mean") is not None:
                        xs.append(value)
                        ys.append(100 * c["mean"])
                        es.append(100 * (c.get("std") or 0.0))
                if xs:
                    ax.errorbar(xs, ys, yerr=es, marker="o", capsize=3, label=group_label, color=f"C{color}")
                    plotted.update(xs)
            if plotted:  # ticks at the measured points only: λ values such as 0.0015 would overlap
                ticks = sorted(plotted)
                ax.set_xticks(ticks, [f"{t:g}" for t in ticks], fontsize=7, rotation=45)
            ax.set_title(f"{label}: {sweep} (paper best: {paper.FIGURE3_STATED_BEST.get(sweep, '?')})", fontsize=9)
            ax.set_xlabel(sweep)
            ax.set_ylabel("HR@10 (%)")
            ax.grid(alpha=0.3)
            for handle, text in zip(*ax.get_legend_handles_labels()):
                legend.setdefault(text, handle)
    # one legend above the panels (a per-panel legend covers the flat lines' points); a group keeps
    # its colour in every panel, also where another group has no point
    if legend:
        fig.legend(list(legend.values()), list(legend), loc="upper center", ncol=len(legend), fontsize=8, frameon=False)
        fig.tight_layout(rect=(0, 0, 1, 1 - 0.35 / height))
    else:
        fig.tight_layout()
    save_figure(fig, path)


def render(experiment_: spec.Experiment, summary: dict[str, Any], out_dir: Path) -> str:
    sweeps = dict(experiment_.extra)["sweeps"]
    dataset = experiment_.datasets[0].name
    png = out_dir / "figure3.png"
    plot(summary, sweeps, dataset, png)
    lines = [f"![Figure 3]({png.name})", "", f"Protocol `{PROTOCOL}`; HR@10 in %, mean ± std over seeds.", ""]
    header = ["sweep", "value"] + [f"{d} {g}" for d in ("Cloth", "Sport") for _, g in GROUPS]
    lines += ["| " + " | ".join(header) + " |", "|" + "|".join(["---"] * 2 + ["---:"] * (len(header) - 2)) + "|"]
    from experiments.tables import fmt

    for sweep, value, name, _ in sweep_points(sweeps):
        row = [sweep, str(value)]
        row += [fmt(cell(summary, dataset, name, PROTOCOL, d, g, "hr@10")) for d in ("x", "y") for g, _ in GROUPS]
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines) + "\n"


def reproduce(
    quick: bool = False,
    seeds: int | None = None,
    datasets: list[str] | None = None,
    methods: list[str] | None = None,
    sets: list[str] | None = None,
    **kwargs: Any,
) -> Path:
    """``methods`` selects sweep points by name (``--methods T=10,lambda_a=0.003``): a coarser grid."""
    chosen = experiment(quick, seeds, datasets, spec.parse_sets(sets), points=methods)
    return common.reproduce(
        NAME, render, quick=quick, seeds=seeds, experiment=chosen, datasets=datasets, methods=methods, sets=sets, **kwargs
    )


if __name__ == "__main__":
    sys.exit(common.main(NAME, reproduce))
