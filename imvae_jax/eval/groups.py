"""User groups per target domain, and per-group averages of per-row metrics.

Groups (``data/README.md`` caveats 2 and 4; the authors' "cold-start" mixes two kinds):

==========================  ==================================================================
``all``                     every row of the domain
``tailed``                  target-domain length (history + target) <= the split's threshold;
                            contains the cold-start rows, as in the authors' code
``cold_start``              no history in the target domain (either kind below)
``cold_start_other``        ``cold_start_kind == 1``: cold-start, history in the other domain
``no_history``              ``cold_start_kind == 2``: no history in either domain
``target_in_train``         the target also sits in the user's training row (optional column)
``target_not_in_train``     the complement; both only when the column is present
``<group>_not_in_train``    tailed / cold-start groups without the target-in-train rows
==========================  ==================================================================
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np

from imvae_jax.eval.metrics import metric_names, per_row_metrics

DOMAINS: tuple[str, ...] = ("x", "y")
GROUPS: tuple[str, ...] = (
    "all",
    "tailed",
    "cold_start",
    "cold_start_other",
    "no_history",
    "target_in_train",
    "target_not_in_train",
)
# groups that are also reported without the rows whose target sits in the user's training row
LEAK_FREE_GROUPS: tuple[str, ...] = ("tailed", "cold_start", "cold_start_other", "no_history")
GROUPS = GROUPS + tuple(f"{g}_not_in_train" for g in LEAK_FREE_GROUPS)
GROUP_LABELS: dict[str, str] = {
    "all": "all",
    "tailed": "tailed",
    "cold_start": "cold-start (any)",
    "cold_start_other": "cold-start: other domain",
    "no_history": "no history",
    "target_in_train": "target in train row",
    "target_not_in_train": "target not in train row",
    **{f"{g}_not_in_train": f"{g.replace('_', ' ')}, target not in train row" for g in LEAK_FREE_GROUPS},
}


def _column(columns: Mapping[str, object], name: str, rows: int | None) -> np.ndarray:
    if name not in columns:
        raise KeyError(f"group column {name!r} missing; have {sorted(columns)}")
    value = np.asarray(columns[name])
    if value.ndim != 1 or (rows is not None and value.shape[0] != rows):
        raise ValueError(f"group column {name!r}: expected shape [{rows}], got {value.shape}")
    return value


def group_masks(columns: Mapping[str, object]) -> dict[str, np.ndarray]:
    """Bool ``[R]`` masks of every group present, from a batch dict or split columns.

    Needs ``cold_start_kind`` and ``tailed``; ``cold_start`` is checked against the kind when
    present; ``target_in_train`` is optional (its two groups are skipped if absent). Does not
    split by domain (:func:`aggregate` does).
    """
    kind = _column(columns, "cold_start_kind", None).astype(np.int64)
    rows = kind.shape[0]
    if not np.isin(kind, (0, 1, 2)).all():
        bad = int(np.flatnonzero(~np.isin(kind, (0, 1, 2)))[0])
        raise ValueError(f"cold_start_kind must be 0, 1 or 2; row {bad} has {kind[bad]}")
    cold = kind > 0
    if "cold_start" in columns:
        given = _column(columns, "cold_start", rows).astype(bool)
        if (given != cold).any():
            bad = int(np.flatnonzero(given != cold)[0])
            raise ValueError(
                f"row {bad}: cold_start={bool(given[bad])} disagrees with cold_start_kind={kind[bad]}"
            )
    masks = {
        "all": np.ones(rows, bool),
        "tailed": _column(columns, "tailed", rows).astype(bool),
        "cold_start": cold,
        "cold_start_other": kind == 1,
        "no_history": kind == 2,
    }
    if "target_in_train" in columns:
        leak = _column(columns, "target_in_train", rows).astype(bool)
        masks["target_in_train"] = leak
        masks["target_not_in_train"] = ~leak
        for group in LEAK_FREE_GROUPS:  # every group again without the leaky rows
            masks[f"{group}_not_in_train"] = masks[group] & ~leak
    return masks


def aggregate(
    ranks: np.ndarray,
    domains: np.ndarray,
    masks: Mapping[str, np.ndarray],
    ks: Iterable[int] = (5, 10, 20),
    valid: np.ndarray | None = None,
    ranks_all: np.ndarray | None = None,
) -> dict[str, dict[str, dict[str, float | int | None]]]:
    """Per-row ranks -> ``{domain: {group: {metric: mean, 'n': rows}}}``.

    ranks, domains (0 = ``"x"``, 1 = ``"y"``): ``[R]``; masks: group name -> bool ``[R]``
    (groups in :data:`GROUPS` order first, any others after); valid: optional ``[R]`` mask of
    real rows. An empty group gets ``n = 0`` and ``None`` for every metric (never NaN).
    ``ranks_all``, when given, replaces ``ranks`` for the ``all`` group only.
    """
    ks = tuple(ks)
    ranks = np.asarray(ranks)
    domains = np.asarray(domains).astype(np.int64)
    rows = ranks.shape[0]
    if ranks.ndim != 1 or domains.shape != (rows,):
        raise ValueError(f"ranks and domains must both be [R]; got {ranks.shape} and {domains.shape}")
    if not np.isin(domains, (0, 1)).all():
        raise ValueError(f"target domain must be 0 or 1, found {sorted(set(domains.tolist()) - {0, 1})}")
    keep = np.ones(rows, bool) if valid is None else np.asarray(valid).astype(bool)
    names = metric_names(ks)
    per_row = per_row_metrics(ranks, ks)
    per_row_all = per_row if ranks_all is None else per_row_metrics(np.asarray(ranks_all), ks)
    ordered = [g for g in GROUPS if g in masks] + [g for g in masks if g not in GROUPS]
    result: dict[str, dict[str, dict[str, float | int | None]]] = {}
    for d, domain in enumerate(DOMAINS):
        result[domain] = {}
        for group in ordered:
            mask = np.asarray(masks[group]).astype(bool)
            if mask.shape != (rows,):
                raise ValueError(f"group {group!r}: mask shape {mask.shape}, expected ({rows},)")
            select = mask & keep & (domains == d)
            n = int(select.sum())
            source = per_row_all if group == "all" else per_row
            entry: dict[str, float | int | None] = {
                name: (float(source[name][select].mean()) if n else None) for name in names
            }
            entry["n"] = n
            result[domain][group] = entry
    return result
