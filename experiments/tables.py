"""Markdown comparison tables: our mean ± std over seeds beside the paper's numbers.

One table per (dataset, protocol, user set). Rows: (domain, group, metric) for NDCG@10 and
HR@10; columns: our methods, then the paper's columns chosen by the table module. Values in
%. ``authors-max`` tables carry the warning banner of :mod:`imvae_jax.eval.report`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

from experiments import paper_numbers as paper
from experiments.runner import cell, group_size

METRICS = ("ndcg@10", "hr@10")
METRIC_LABELS = {"ndcg@10": "NDCG@10", "hr@10": "HR@10"}
# (our group key, label, the paper's group it is compared with)
ALL_USERS_GROUPS: tuple[tuple[str, str, str | None], ...] = (
    ("tailed", "tailed", "tailed"),
    ("cold_start", "cold-start (both kinds)", "cold_start"),
    ("cold_start_other", "cold-start: other domain", None),
    ("no_history", "cold-start: no history", None),
    ("all", "all", "all"),
)
CLEAN_GROUPS: tuple[tuple[str, str, str | None], ...] = (
    ("tailed_not_in_train", "tailed", "tailed"),
    ("cold_start_not_in_train", "cold-start (both kinds)", "cold_start"),
    ("cold_start_other_not_in_train", "cold-start: other domain", None),
    ("no_history_not_in_train", "cold-start: no history", None),
    ("target_not_in_train", "all", "all"),
)
# the two user sets every table is given for (data README, caveat 2)
USER_SETS = ((ALL_USERS_GROUPS, "all test users"), (CLEAN_GROUPS, "without target-in-train users"))
PROTOCOL_NOTES = {
    "valid-selected": "Protocol `valid-selected`: checkpoint chosen on validation NDCG@10, test evaluated once.",
    "authors-max": (
        "**WARNING - AUTHORS-MAX protocol: every metric is its own maximum over epochs ON THE TEST "
        "split (the authors' reporting; optimistic, not comparable with validation-selected results).**"
    ),
    "same-latents": (
        "Protocol `same-latents` (`imvae probe`): the valid-selected checkpoint with every user's latents "
        "replaced by their mean over the test rows, so each model ranks items the same way for every user. "
        "Where it equals `valid-selected`, the model is not personalised. Model-free scorers as always; SASRec has no latents."
    ),
}

# a paper column: (header, function (paper domain, paper group, metric) -> text or None)
PaperColumn = tuple[str, Callable[[str, str, str], str | None]]


def fmt(value: dict | None, digits: int = 2) -> str:
    """A seed-summary cell in %: 'mean ± std' ('mean' for one seed, '-' when absent)."""
    if not value or value.get("mean") is None:
        return "-"
    mean, std = value["mean"], value.get("std")
    values = [v for v in value.get("values", []) if v is not None]
    text = f"{100 * mean:.{digits}f}"
    if std is not None and len(values) > 1:
        text += f" ± {100 * std:.{digits}f}"
    return text


def fmt_paper(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, tuple):
        mean, std = value
        return f"{mean:.2f}" + (f" ± {std:.2f}" if std is not None else "")
    return f"{value:.2f}"


def table2_paper_column(method: str, printed: bool = False) -> PaperColumn:
    def get(domain: str, group: str, metric: str) -> str | None:
        try:
            return fmt_paper(paper.table2_cell(domain, group, metric, method, printed=printed))
        except KeyError:
            return None

    return (f"paper {method}", get)


def best_baseline_column() -> PaperColumn:
    def get(domain: str, group: str, metric: str) -> str | None:
        try:
            name, value = paper.best_baseline(domain, group, metric)
        except KeyError:
            return None
        return f"{fmt_paper(value)} ({name})"

    return ("paper best baseline", get)



def comparison_tables(
    summary: dict[str, Any],
    dataset: str,
    protocols: Sequence[str],
    methods: Sequence[tuple[str, str]],
    paper_columns: Sequence[PaperColumn] = (),
) -> list[str]:
    """One :func:`comparison_table` per protocol and per user set (:data:`USER_SETS`)."""
    return [
        comparison_table(summary, dataset, protocol, methods, groups, paper_columns,
                         title=f"{dataset}, {protocol}, {who}")
        for protocol in protocols
        for groups, who in USER_SETS
    ]


def comparison_table(
    summary: dict[str, Any],
    dataset: str,
    protocol: str,
    methods: Sequence[tuple[str, str]],  # (method key, column label)
    groups: Sequence[tuple[str, str, str | None]] = ALL_USERS_GROUPS,
    paper_columns: Sequence[PaperColumn] = (),
    title: str | None = None,
    domains: tuple[str, str] | None = None,
) -> str:
    """One Markdown table: rows (domain, group, metric), columns ours then the paper's."""
    names = domains or paper.paper_domains(dataset) or ("X", "Y")
    on_paper = paper.paper_domains(dataset) is not None
    columns = [label for _, label in methods] + ([h for h, _ in paper_columns] if on_paper else [])

    def cells(d: int, domain: str, group: str, paper_group: str | None, metric: str) -> list[str]:
        row = [fmt(cell(summary, dataset, m, protocol, domain, group, metric)) for m, _ in methods]
        if on_paper:
            row += [(get(names[d], paper_group, metric) if paper_group else None) or "-" for _, get in paper_columns]
        return row

    return grid_table(summary, dataset, protocol, groups, names, columns, cells, title)


def grid_table(
    summary: dict[str, Any],
    dataset: str,
    protocol: str,
    groups: Sequence[tuple[str, str, str | None]],
    names: Sequence[str],  # the two domains' names
    columns: Sequence[str],
    cells: Callable[[int, str, str, str | None, str], list[str]],  # (d, domain, group, paper group, metric) -> row
    title: str | None = None,
) -> str:
    """Markdown: the protocol's note, then one row per (domain, group with test rows, metric)."""
    lines = [f"#### {title}", ""] if title else []
    lines += [PROTOCOL_NOTES.get(protocol, f"Protocol `{protocol}`."), ""]
    header = ["domain", "users", "n", "metric", *columns]
    lines.append("| " + " | ".join(header) + " |")
    lines.append("|" + "|".join(["---"] * 4 + ["---:"] * len(columns)) + "|")
    for d, domain in enumerate(("x", "y")):
        for group, label, paper_group in groups:
            n = group_size(summary, dataset, domain, group)
            if n in ("-", "0"):
                continue
            for metric in METRICS:
                row = [names[d], label, n, METRIC_LABELS[metric], *cells(d, domain, group, paper_group, metric)]
                lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines) + "\n"


def difference(reference: dict | None, other: dict | None, other_fixed: bool = False) -> dict[str, Any] | None:
    """``reference - other`` of two seed-summary cells, with its standard error and a verdict.

    The standard error is Welch's, ``sqrt(s_r^2 / n_r + s_o^2 / n_o)`` with sample variances
    (ddof 1) of the per-seed values; ``other_fixed`` marks a model-free scorer (one value and no
    seed variance). Verdict: ``ahead`` / ``behind`` when ``|delta| > 2 SE``, ``tie`` when within
    it, ``one seed`` when a trained side has a single seed (no variance to judge by).
    Returns None when a side is absent.
    """
    if not reference or not other or reference.get("mean") is None or other.get("mean") is None:
        return None

    def spread(cell: dict, fixed: bool) -> float | None:  # s^2 / n, or None when unknown
        values = [v for v in cell.get("values") or [cell["mean"]] if v is not None]
        if fixed:
            return 0.0
        if len(values) < 2:
            return None
        mean = sum(values) / len(values)
        return sum((v - mean) ** 2 for v in values) / (len(values) - 1) / len(values)

    delta = reference["mean"] - other["mean"]
    parts = [spread(reference, False), spread(other, other_fixed)]
    if any(p is None for p in parts):
        return {"delta": delta, "se": None, "verdict": "one seed"}
    se = math.sqrt(sum(parts))
    verdict = "tie" if abs(delta) <= 2 * se else ("ahead" if delta > 0 else "behind")
    return {"delta": delta, "se": se, "verdict": verdict}


def fmt_difference(value: dict[str, Any] | None) -> str:
    """A :func:`difference` in points of %: '+0.52 ± 0.21 ahead'."""
    if value is None:
        return "-"
    text = f"{100 * value['delta']:+.2f}"
    if value["se"] is not None:
        text += f" ± {100 * value['se']:.2f}"
    return f"{text} {value['verdict']}"


def ordering_tables(
    summary: dict[str, Any],
    dataset: str,
    reference: tuple[str, str],  # (method key, label)
    others: Sequence[tuple[str, str]],
    fixed: Sequence[str] = (),  # model-free method keys
    protocols: Sequence[str] = ("valid-selected", "authors-max"),
) -> list[str]:
    """Per protocol and user set, ``reference`` minus each of ``others`` in every (domain, group,
    metric) cell: the difference of seed means in points, ± its standard error, and whether
    ``reference`` is ahead, behind or tied (within 2 SE), as :func:`difference` decides."""
    names = paper.paper_domains(dataset) or ("X", "Y")

    def cells(protocol: str) -> Callable[[int, str, str, str | None, str], list[str]]:
        def row(d: int, domain: str, group: str, paper_group: str | None, metric: str) -> list[str]:
            ours = cell(summary, dataset, reference[0], protocol, domain, group, metric)
            return [
                fmt_difference(difference(ours, cell(summary, dataset, m, protocol, domain, group, metric), m in fixed))
                for m, _ in others
            ]

        return row

    out = [
        grid_table(summary, dataset, protocol, groups, names, [label for _, label in others], cells(protocol),
                   title=f"{dataset}, {protocol}, {who}: {reference[1]} minus each method")
        for protocol in protocols
        for groups, who in USER_SETS
    ]
    return out


def ordering_section(experiment: Any, summary: dict[str, Any], dataset: str) -> list[str]:
    """IM-VAE (the experiment's first method standing beside the paper's IM-VAE) minus each of its
    other methods (:func:`ordering_tables`); empty when there is nothing to compare."""
    methods = list(experiment.methods)
    reference = next((m for m in methods if m.paper == "IM-VAE"), None)
    others = [m for m in methods if m is not reference]
    if reference is None or not others:
        return []
    trained = summary["cells"].get(dataset, {})
    if reference.name not in trained or not any(m.name in trained for m in others):
        missing = reference.label if reference.name not in trained else "any other method"
        return [f"### {dataset}: {reference.label} against each method\n\nNo ordering: {missing} has no finished run here.\n"]
    intro = (
        f"### {dataset}: {reference.label} against each method\n\n"
        f"Each cell: {reference.label}'s mean minus the method's, in points of %, ± the standard error "
        "of that difference (Welch: sample variances over seeds; a model-free scorer has none); "
        "`ahead` / `behind` when the difference exceeds 2 standard errors, `tie` within them, "
        "`one seed` when a trained side has a single seed. Under `authors-max` a trained model's cell "
        "is its best epoch on test and a model-free scorer's its one evaluation, so `ahead` against a "
        "scorer there is partly that selection: read the `valid-selected` tables for the ordering.\n"
    )
    return [intro] + ordering_tables(
        summary, dataset, (reference.name, reference.label), [(m.name, m.label) for m in others],
        fixed=[m.name for m in others if m.scorer],
    )


def finite_cells(summary: dict[str, Any]) -> list[float]:
    """Every mean in the summary (for tests: all must be finite)."""
    out = []
    for by_method in summary["cells"].values():
        for by_protocol in by_method.values():
            for result in by_protocol.values():
                for groups in result.values():
                    for entry in groups.values():
                        for metric, value in entry.items():
                            if metric != "n" and isinstance(value, dict) and value.get("mean") is not None:
                                out.append(value["mean"])
    return out


def all_finite(values: Sequence[float]) -> bool:
    return all(math.isfinite(v) for v in values)


def header(summary: dict[str, Any], command: str, experiment: Any = None) -> str:
    """The provenance block of a results file: command, budget, hardware, date, wall time."""
    hw = summary.get("hardware", {})
    lines = [f"- command: `{command}`", f"- seeds: {summary.get('seeds')}"]
    if experiment is not None:
        lines += _budget_lines(experiment)
    lines += [
        f"- hardware (of this command): {hw.get('processor')}, {hw.get('cpu_count')} CPUs"
        f"{', ' + '/'.join(hw['cpu_vector_extensions']) if hw.get('cpu_vector_extensions') else ''}, jax {hw.get('jax')}, devices {hw.get('devices')}",
    ]
    if summary.get("trained_on"):
        runs = ", ".join(f"{kind}: {n}" for kind, n in summary["trained_on"].items())
        lines.append(f"- trained runs by the device that trained them (a reused run keeps its own): {runs}")
    seeds = summary.get("seeds_per_method") or {}
    if len(set(seeds.values())) > 1:
        lines.append("- seeds per method (trained so far): " + ", ".join(f"{m}: {n}" for m, n in seeds.items()))
    if summary.get("not_trained"):
        left = summary["not_trained"]
        lines.append(
            f"- **{len(left)} runs not trained yet, left out (`--finished-only`)**: "
            + ", ".join(left[:12]) + (f", ... ({len(left) - 12} more)" if len(left) > 12 else "")
        )
    lines += [
        f"- date: {summary.get('date')}; wall time: {summary.get('wall_s', 0):.1f} s",
    ]
    if summary.get("quick"):
        lines.append(
            "- **QUICK MODE: a tiny model trained for one epoch on a slice of the data. These numbers "
            "only show that the pipeline runs end to end; they are not results and say nothing about "
            "the paper's claims.**"
        )
    return "\n".join(lines) + "\n"


def _budget_lines(experiment: Any) -> list[str]:
    """What this run changes from the library's defaults (the paper's protocol), in words."""
    def show(pairs: Any) -> str:
        return ", ".join(f"`{k}={v}`" for k, v in pairs)

    lines = []
    if experiment.rows:
        lines.append(f"- data slice: whole users until {experiment.rows} training rows per dataset")
    data = {k: v for d in experiment.datasets for k, v in d.overrides}
    negatives = data.get("data.num_eval_negatives", 999)
    lines.append(f"- candidates: each valid/test target ranked against {negatives} sampled negatives (paper: 999)")
    if experiment.base:
        lines.append(f"- spec settings: {show(experiment.base)}")
    if experiment.overrides:
        lines.append(f"- **changed with `--set` (differs from the spec and the paper)**: {show(experiment.overrides)}")
    return lines


def levels_table(
    summary: dict[str, Any],
    levels: Sequence[tuple[str, int]],  # (dataset key, level in %)
    methods: Sequence[tuple[str, str]],  # (method key, short label)
    protocol: str,
    paper_table: dict[str, Any] | None,
    groups: Sequence[tuple[str, str, str | None]] = ALL_USERS_GROUPS,
    level_label: str = "level",
    title: str | None = None,
) -> str:
    """Rows (domain, group, metric); per level, our methods then the paper's SA-VAE and IM-VAE."""
    names = ("Cloth", "Sport")
    lines = [f"#### {title}", ""] if title else []
    lines += [PROTOCOL_NOTES.get(protocol, f"Protocol `{protocol}`."), ""]
    header = ["domain", "users", "metric"]
    for dataset, level in levels:
        header += [f"{level_label}={level}% {label}" for _, label in methods]
        if paper_table is not None:
            header += [f"{level_label}={level}% paper {m}" for m in paper.LEVEL_METHODS]
    lines.append("| " + " | ".join(header) + " |")
    lines.append("|" + "|".join(["---"] * 3 + ["---:"] * (len(header) - 3)) + "|")
    for d, domain in enumerate(("x", "y")):
        for group, label, paper_group in groups:
            sizes = [group_size(summary, dataset, domain, group) for dataset, _ in levels]
            if all(n in ("-", "0") for n in sizes):
                continue
            for metric in METRICS:
                row = [names[d], f"{label} (n {'/'.join(sizes)})", METRIC_LABELS[metric]]
                for dataset, level in levels:
                    row += [fmt(cell(summary, dataset, m, protocol, domain, group, metric)) for m, _ in methods]
                    if paper_table is not None:
                        for m in paper.LEVEL_METHODS:
                            value = (
                                paper_table[names[d]][paper_group][metric].get((level, m))
                                if paper_group and level in paper.LEVELS
                                else None
                            )
                            row.append(fmt_paper(value))
                lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines) + "\n"
