"""Table 5: overlap ratio K_o on Cloth-Sport, two ways.

* ``ko*``: the paper's description: the training rows of a share K_o of the overlapping users
  are kept (:func:`experiments.derive.thin_overlap`), the test file is unchanged;
* ``amid*``: the AMID files train25 / train75 / train100 (= train75_DR, ``ob_label`` ignored).
  They keep every two-domain row and 25 / 75 / 100 % of the single-domain rows: they vary the
  NON-overlapping users, so their paper columns are shown only for orientation.

Run: ``imvae reproduce table5 [--quick] [--seeds N] [--out DIR]`` or ``python -m experiments.table5``.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from experiments import common, paper_numbers as paper
from experiments.levels import render_levels
from experiments.spec import Experiment

NAME = "table5"
NOTES = {
    "ko": "K_o = share of overlapping training users kept (the others' training rows dropped); test unchanged.",
    "amid": (
        "AMID files: all two-domain rows plus 25/75/100 % of the single-domain rows, AMID's own test file. "
        "This varies the non-overlapping users; the paper's K_o columns are shown for orientation only."
    ),
}


def render(experiment: Experiment, summary: dict[str, Any], out_dir: Path) -> str:
    return render_levels(experiment, summary, "overlap", "K_o", paper.TABLE5, NOTES)


def reproduce(**kwargs: Any) -> Path:
    return common.reproduce(NAME, render, **kwargs)


if __name__ == "__main__":
    sys.exit(common.main(NAME, reproduce))
