"""Table 4: interaction density D_s in {25, 50, 75, 100} % on Cloth-Sport.

D_s keeps each interaction of train and test with probability D_s (targets always kept):
:func:`experiments.derive.thin_density`. The paper's SA-VAE column is compared with our
cross-domain VAE baseline (IM-VAE's network trained on the ELBO alone), labelled as such.

Run: ``imvae reproduce table4 [--quick] [--seeds N] [--out DIR]`` or ``python -m experiments.table4``.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from experiments import common, paper_numbers as paper
from experiments.levels import render_levels
from experiments.spec import Experiment

NAME = "table4"
NOTES = {"ds": "Each (user, domain, item) interaction kept with probability D_s (hash-seeded); targets always kept."}


def render(experiment: Experiment, summary: dict[str, Any], out_dir: Path) -> str:
    return render_levels(experiment, summary, "density", "D_s", paper.TABLE4, NOTES)


def reproduce(**kwargs: Any) -> Path:
    return common.reproduce(NAME, render, **kwargs)


if __name__ == "__main__":
    sys.exit(common.main(NAME, reproduce))
