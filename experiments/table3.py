"""Table 3: ablations of IM-VAE on Cloth-Sport (w/o PSG = random pseudo-sequences, w/o IF-R & DS-R, w/o DN-R).

Run: ``imvae reproduce table3 [--quick] [--seeds N] [--out DIR]`` or ``python -m experiments.table3``.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from experiments import common, paper_numbers as paper, tables
from experiments.runner import present_protocols
from experiments.spec import Experiment

NAME = "table3"


def paper_column(variant: str) -> tables.PaperColumn:
    def get(domain: str, group: str, metric: str) -> str | None:
        try:
            return tables.fmt_paper(paper.TABLE3[domain][group][metric][variant])
        except KeyError:
            return None

    return (f"paper {variant}", get)


def render(experiment: Experiment, summary: dict[str, Any], out_dir: Path) -> str:
    methods = [(m.name, m.label) for m in experiment.methods]
    paper_columns = [paper_column(v) for v in paper.TABLE3_VARIANTS]
    parts = []
    for dataset in experiment.datasets:
        parts.extend(tables.comparison_tables(summary, dataset.name, present_protocols(summary), methods, paper_columns))
        parts.extend(tables.ordering_section(experiment, summary, dataset.name))
    return "\n".join(parts)


def reproduce(**kwargs: Any) -> Path:
    return common.reproduce(NAME, render, **kwargs)


if __name__ == "__main__":
    sys.exit(common.main(NAME, reproduce))
