"""Results as JSON-ready dicts and Markdown tables; seed summaries; the authors-max reducer.

A *result* is the nested dict of :func:`imvae_jax.eval.groups.aggregate`:
``{domain: {group: {metric: value | None, 'n': rows}}}``. A *seed summary* has the same
shape with each metric replaced by ``{'mean', 'std', 'values'}``. Flat keys for
``metrics.jsonl`` are ``"<split>/<domain>/<group>/<metric>"``, e.g. ``"test/x/all/ndcg@10"``.

Every output carries its protocol. ``authors-max`` (each metric's maximum over epochs, on
the TEST split: the authors' reporting, ``reference/authors_code_spec.md`` section 4) is
optimistic and is labelled as such wherever it appears.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from imvae_jax.eval.groups import GROUP_LABELS

Result = dict[str, dict[str, dict[str, Any]]]

PROTOCOLS: dict[str, str] = {
    "valid-selected": "checkpoint selected on the validation split (ndcg@10); test evaluated once",
    "authors-max": (
        "AUTHORS-MAX: each metric is its own maximum over epochs, measured ON THE TEST SPLIT "
        "(the authors' reporting; no model selection, optimistic)"
    ),
    "model-free": "model-free scorer: no training epochs, no model selection",
}
AUTHORS_MAX_BANNER = (
    "**WARNING - AUTHORS-MAX protocol: every metric is its maximum over epochs on the TEST "
    "split (different metrics may come from different epochs). Not comparable with "
    "validation-selected results.**"
)


def _check_protocol(protocol: str) -> None:
    if protocol not in PROTOCOLS:
        raise ValueError(f"protocol must be one of {sorted(PROTOCOLS)}, got {protocol!r}")


# ----------------------------------------------------------------------------- flat keys


def flatten(result: Mapping[str, Mapping[str, Mapping[str, Any]]], prefix: str = "test") -> dict[str, Any]:
    """``{domain: {group: {metric: v}}}`` -> ``{"<prefix>/<domain>/<group>/<metric>": v}``."""
    flat: dict[str, Any] = {}
    for domain, groups in result.items():
        for group, metrics in groups.items():
            for metric, value in metrics.items():
                for part in (domain, group, metric):
                    if "/" in part:
                        raise ValueError(f"name {part!r} contains '/', cannot be flattened")
                flat[f"{prefix}/{domain}/{group}/{metric}"] = value
    return flat


def unflatten(flat: Mapping[str, Any], prefix: str = "test") -> Result:
    """Inverse of :func:`flatten` for the keys under ``prefix`` (other keys are ignored)."""
    result: Result = {}
    head = prefix + "/"
    for key, value in flat.items():
        if not key.startswith(head):
            continue
        parts = key[len(head):].split("/")
        if len(parts) != 3:
            raise ValueError(f"key {key!r} is not '{prefix}/<domain>/<group>/<metric>'")
        domain, group, metric = parts
        result.setdefault(domain, {}).setdefault(group, {})[metric] = value
    return result


# ----------------------------------------------------------------------------- reducers


def _metric_items(entry: Mapping[str, Any]) -> Iterable[tuple[str, Any]]:
    return ((m, v) for m, v in entry.items() if m != "n")


def _same_structure(results: Sequence[Result], what: str) -> None:
    if not results:
        raise ValueError(f"{what}: no results given")
    shape = {(d, g, m) for d, gs in results[0].items() for g, ms in gs.items() for m in ms}
    for i, r in enumerate(results[1:], start=1):
        other = {(d, g, m) for d, gs in r.items() for g, ms in gs.items() for m in ms}
        if other != shape:
            raise ValueError(f"{what}: result {i} has other keys than result 0: {sorted(other ^ shape)[:5]}")


def authors_max(epoch_results: Sequence[Result]) -> Result:
    """Each metric's maximum over epochs (None where every epoch had None); ``n`` from epoch 0.

    This is the authors' reporting on the TEST split: label it (``protocol='authors-max'``).
    """
    _same_structure(epoch_results, "authors_max")
    out: Result = {}
    for domain, groups in epoch_results[0].items():
        out[domain] = {}
        for group, entry in groups.items():
            merged: dict[str, Any] = {}
            for metric, _ in _metric_items(entry):
                values = [r[domain][group][metric] for r in epoch_results]
                values = [v for v in values if v is not None]
                merged[metric] = max(values) if values else None
            merged["n"] = entry.get("n")
            out[domain][group] = merged
    return out


def seed_summary(seed_results: Sequence[Result], ddof: int = 0) -> Result:
    """Mean and std over seeds of every metric: ``{'mean', 'std', 'values'}`` per cell.

    ddof=0 (population std) matches the authors' ``np.std``. Seeds with None (empty group)
    are left out of that cell; a cell with no values gets mean = std = None. ``n`` is an int
    when every seed has the same row count, else the list of counts.
    """
    _same_structure(seed_results, "seed_summary")
    out: Result = {}
    for domain, groups in seed_results[0].items():
        out[domain] = {}
        for group, entry in groups.items():
            cell: dict[str, Any] = {}
            for metric, _ in _metric_items(entry):
                values = [r[domain][group][metric] for r in seed_results]
                present = np.array([v for v in values if v is not None], dtype=np.float64)
                ok = present.size > ddof
                cell[metric] = {
                    "mean": float(present.mean()) if present.size else None,
                    "std": float(present.std(ddof=ddof)) if ok else None,
                    "values": values,
                }
            counts = [r[domain][group].get("n") for r in seed_results]
            cell["n"] = counts[0] if len(set(counts)) == 1 else counts
            out[domain][group] = cell
    return out


# ----------------------------------------------------------------------------- outputs


def to_json(result: Result, protocol: str, split: str = "test", **meta: Any) -> dict[str, Any]:
    """A JSON-ready record: protocol (and its note), split, results, and any extra metadata."""
    _check_protocol(protocol)
    return {"protocol": protocol, "protocol_note": PROTOCOLS[protocol], "split": split, "results": result, **meta}


def _format(value: Any, digits: int) -> str:
    """A cell in %: a float, None ('-') or a seed-summary dict ('mean ± std')."""
    if isinstance(value, Mapping):
        mean, std = value.get("mean"), value.get("std")
        if mean is None:
            return "-"
        text = f"{100 * mean:.{digits}f}"
        return text + (f" ± {100 * std:.{digits}f}" if std is not None else "")
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{100 * value:.{digits}f}"


def _metric_label(metric: str) -> str:
    name, _, k = metric.partition("@")
    label = {"ndcg": "NDCG", "hr": "HR", "mrr": "MRR"}.get(name, name)
    return f"{label}@{k}" if k else label


def markdown_table(
    result: Result,
    protocol: str,
    metrics: Sequence[str] = ("ndcg@10", "hr@10"),
    groups: Sequence[str] | None = None,
    title: str | None = None,
    digits: int = 2,
) -> str:
    """Markdown: one line per (domain, group) with its row count, one column per metric (%).

    Accepts a result or a seed summary (cells 'mean ± std'). The protocol is stated under
    the title; ``authors-max`` adds a warning banner.
    """
    _check_protocol(protocol)
    lines = []
    if title:
        lines += [f"### {title}", ""]
    if protocol == "authors-max":
        lines += [AUTHORS_MAX_BANNER, ""]
    lines += [f"Protocol: `{protocol}` ({PROTOCOLS[protocol]}). Values in %.", ""]
    header = ["domain", "group", "n"] + [_metric_label(m) for m in metrics]
    lines.append("| " + " | ".join(header) + " |")
    lines.append("|" + "|".join(["---"] * 2 + ["---:"] * (len(header) - 2)) + "|")
    for domain, domain_groups in result.items():
        for group in groups or list(domain_groups):
            if group not in domain_groups:
                continue
            entry = domain_groups[group]
            n = entry.get("n")
            n_text = "/".join(str(c) for c in n) if isinstance(n, list) else str(n)
            cells = [domain.upper(), GROUP_LABELS.get(group, group), n_text]
            cells += [_format(entry.get(m), digits) for m in metrics]
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
