"""Tables 4 and 5: one dataset per level (D_s or K_o), IM-VAE and the VAE baseline per level."""

from __future__ import annotations

from typing import Any

from experiments import tables
from experiments.runner import present_protocols
from experiments.spec import Experiment


def dataset_levels(experiment: Experiment, key: str) -> dict[str, list[tuple[str, int]]]:
    """Group the datasets into series of (dataset, level %): by derive key, or by name prefix (amid25)."""
    series: dict[str, list[tuple[str, int]]] = {}
    for d in experiment.datasets:
        derived = d.derive_dict()
        digits = "".join(c for c in d.name if c.isdigit())
        level = int(round(100 * float(derived[key]))) if key in derived else int(digits or 100)
        prefix = d.name.rstrip("0123456789")
        series.setdefault(prefix, []).append((d.name, level))
    return series


def render_levels(experiment: Experiment, summary: dict[str, Any], key: str, label: str, paper_table: dict, notes: dict[str, str]) -> str:
    methods = [(m.name, m.label) for m in experiment.methods]
    parts = []
    for prefix, levels in dataset_levels(experiment, key).items():
        parts.append(f"## {prefix} series\n\n{notes.get(prefix, '')}\n")
        for protocol in present_protocols(summary):
            for groups, who in tables.USER_SETS:
                parts.append(
                    tables.levels_table(
                        summary, levels, methods, protocol, paper_table, groups, label,
                        title=f"{prefix}: {protocol}, {who}",
                    )
                )
    return "\n".join(parts)
