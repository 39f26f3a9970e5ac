"""Table 2: IM-VAE (paper and authors variants) against baselines, per dataset and user group.

Datasets: Cloth-Sport, Phone-Elec, Game-Video (the authors' files) and the synthetic set
(time-ordered, planted cross-domain signal). Methods: see ``configs/table2.yaml``. For each
dataset and protocol two tables: all test users, and without the users whose test target
sits in their training row (data README caveat 2). The paper's IM-VAE, SASRec, SA-VAE and
CDRIB columns and its best baseline per row stand beside ours; Phone "All" uses the implied
IM-VAE values (4.67 / 8.88), not the printed ones.

Run: ``imvae reproduce table2 [--quick] [--seeds N] [--out DIR]`` or ``python -m experiments.table2``.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from experiments import common, tables
from experiments.runner import present_protocols
from experiments.spec import Experiment

NAME = "table2"
PAPER_COLUMNS = ("IM-VAE", "SASRec", "SA-VAE", "CDRIB")


def render(experiment: Experiment, summary: dict[str, Any], out_dir: Path) -> str:
    methods = [(m.name, m.label) for m in experiment.methods]
    paper_columns = [tables.table2_paper_column(m) for m in PAPER_COLUMNS] + [tables.best_baseline_column()]
    parts = []
    for dataset in experiment.datasets:
        parts.append(f"## {dataset.name}\n")
        parts.extend(tables.comparison_tables(summary, dataset.name, present_protocols(summary), methods, paper_columns))
        parts.extend(tables.ordering_section(experiment, summary, dataset.name))
    parts.append(
        "Paper columns: Table 2 as printed, except IM-VAE Phone 'all' = implied 4.67 / 8.88 "
        "(the printed 5.79 / 10.61 repeat Game's). The paper's cold-start row is our "
        "'cold-start (both kinds)'; it has no split by kind and no target-in-train filter. "
        "The paper's numbers were reported the authors' way (each metric's best epoch on test, "
        "negatives from the test file's items): compare them with our `authors-max` tables. "
        "Popularity, Target popularity (how often an item is a training row's target) and Next in "
        "file order are model-free (no epochs): the same numbers under every protocol.\n"
    )
    return "\n".join(parts)


def reproduce(**kwargs: Any) -> Path:
    return common.reproduce(NAME, render, **kwargs)


if __name__ == "__main__":
    sys.exit(common.main(NAME, reproduce))
