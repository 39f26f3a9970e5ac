"""Every measured number of an experiment as one long table: ``<out>/results.csv``.

One row per (dataset, method, seed, protocol, domain, group, metric), straight from the run
records (not from the seed summary), for plotting and statistics in any tool:
``pandas.read_csv(path).query("protocol == 'valid-selected' and metric == 'hr@10'")``.
Model-free scorers appear once (seed 0, protocol ``model-free``).
"""

from __future__ import annotations

import csv
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

COLUMNS = ("dataset", "method", "label", "seed", "protocol", "domain", "group", "metric", "value", "n", "device")


def long_rows(records: Sequence[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """The rows of :data:`COLUMNS` of run ``records`` (values as fractions, not %)."""
    for record in records:
        for protocol, result in record["protocols"].items():
            for domain, groups in result.items():
                for group, entry in (groups or {}).items():
                    for metric, value in entry.items():
                        if metric == "n" or isinstance(value, dict):
                            continue
                        yield {
                            "dataset": record["dataset"], "method": record["method"], "label": record.get("label", ""),
                            "seed": record.get("seed", 0), "protocol": protocol, "domain": domain, "group": group,
                            "metric": metric, "value": "" if value is None else value, "n": entry.get("n", ""),
                            "device": record.get("device", ""),
                        }


def write_csv(path: Path, records: Sequence[dict[str, Any]]) -> Path:
    """Write :func:`long_rows` of ``records`` to ``path``; returns it."""
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(long_rows(records))
    return path
