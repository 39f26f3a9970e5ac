"""``imvae audit``: the checks a careful reviewer runs before trusting a benchmark on a dataset.

* **chronology** (caveat 1 of the data README): for item pairs that occur in the lists of at least
  two users, the share whose relative order is the same for every user. Time-ordered lists give
  about 50 %; lists built in one fixed global item order give 100 % (the authors' Amazon files).
  Also the share of lists that ascend in source-id order. Lists are the full per-domain lists
  (history plus the target in the target domain), the last ``PAIR_LIST_CAP`` items of each.
* **leakage** (caveat 2): users in more than one split, and valid/test rows whose target is inside
  the same user's training row (``target_in_train``);
* **empty histories**: cold-start rows of each kind (1: other domain present; 2: no history at all);
* **duplicates**: repeated (user, target domain) rows, repeated row contents, and the same
  (user, domain, target) in train and in valid/test;
* **unseen targets** (caveat 6): valid/test targets that occur nowhere in the training lists.

:func:`audit` returns a JSON-ready dict with a ``warnings`` list; :func:`format_report` prints it.
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from imvae_jax.data import ragged
from imvae_jax.data.ragged import Ragged
from imvae_jax.data.schema import Split

PAIR_LIST_CAP = 50
GLOBAL_ORDER_SHARE = 0.9  # above this share of consistent pairs, lists follow one global order


def full_lists(split: Split) -> tuple[Ragged, Ragged]:
    """Per-row lists of X and Y with the target appended in its domain (the authors' lists)."""
    domain = split.column("target_domain")
    target = split.column("target_item")
    lx = ragged.append(split.column_lists("seq_x"), target, domain == 0)
    ly = ragged.append(split.column_lists("seq_y"), target, domain == 1)
    return lx, ly


def _last(lst: Ragged, cap: int) -> Ragged:
    offsets, values = lst
    position = np.arange(len(values)) - offsets[ragged.row_ids(lst)]
    length = np.diff(offsets)[ragged.row_ids(lst)]
    return ragged.compress(lst, position >= length - cap)


def ordered_pairs(lst: Ragged) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every (earlier, later) pair inside each list: ``(row [P], earlier item [P], later item [P])``."""
    offsets, values = lst
    rows = ragged.row_ids(lst)
    later = offsets[rows + 1] - np.arange(len(values)) - 1  # items after each position
    total = int(later.sum())
    first = np.repeat(np.arange(len(values)), later)
    start = np.repeat(np.arange(len(values)) + 1, later)
    step = np.arange(total) - np.repeat(ragged.from_lengths(later)[:-1], later)
    second = start + step
    return rows[first], values[first], values[second]


def pair_order_consistency(lst: Ragged, users: np.ndarray, cap: int = PAIR_LIST_CAP) -> dict[str, Any]:
    """Share of item pairs (seen in >= 2 users' lists) whose relative order never changes."""
    lst = _last(lst, cap)
    rows, a, b = ordered_pairs(lst)
    if rows.size == 0:
        return {"pairs": 0, "consistent_share": None}
    width = int(max(a.max(), b.max())) + 1
    key = np.minimum(a, b).astype(np.int64) * width + np.maximum(a, b)
    forward = (a < b).astype(np.int64)
    user = users[rows].astype(np.int64)
    keep = a != b
    triples = np.unique(np.stack([key[keep], user[keep], forward[keep]], axis=1), axis=0)
    pair_user = np.unique(triples[:, :2], axis=0)
    pair_keys, n_users = np.unique(pair_user[:, 0], return_counts=True)
    pair_sign = np.unique(triples[:, [0, 2]], axis=0)
    _, n_signs = np.unique(pair_sign[:, 0], return_counts=True)
    shared = n_users >= 2
    n_pairs = int(shared.sum())
    consistent = int((shared & (n_signs == 1)).sum())
    return {
        "pairs": n_pairs,
        "consistent_pairs": consistent,
        "consistent_share": consistent / n_pairs if n_pairs else None,
    }


def ascending_share(lst: Ragged) -> float | None:
    """Share of lists with >= 2 items that ascend strictly in id (= source-id order)."""
    offsets, values = lst
    rows = ragged.row_ids(lst)
    lengths = np.diff(offsets)
    step_down = np.zeros(len(values), bool)
    step_down[1:] = (values[1:] <= values[:-1]) & (rows[1:] == rows[:-1])
    not_ascending = np.bincount(rows[step_down], minlength=len(lengths)) > 0
    long_enough = lengths >= 2
    return float((~not_ascending[long_enough]).mean()) if long_enough.any() else None


def _row_keys(split: Split) -> np.ndarray:
    """A hash per row of its whole content (lists, target domain and item)."""
    lx, ly = split.column_lists("seq_x"), split.column_lists("seq_y")
    out = np.zeros(len(split), np.uint64)
    for i, lst in enumerate((lx, ly)):
        rows = ragged.row_ids(lst)
        position = np.arange(len(lst[1])) - lst[0][rows]
        mix = (lst[1].astype(np.uint64) + np.uint64(0x9E3779B97F4A7C15) * (position.astype(np.uint64) + np.uint64(i + 1)))
        mix ^= mix >> np.uint64(29)
        mix *= np.uint64(0xBF58476D1CE4E5B9)
        np.add.at(out, rows, mix)
        out ^= np.uint64(i + 7) * np.diff(lst[0]).astype(np.uint64)
    out += split.column("target_domain").astype(np.uint64) * np.uint64(1_000_003)
    out += split.column("target_item").astype(np.uint64) * np.uint64(7_919)
    return out


def audit(splits: Mapping[str, Split]) -> dict[str, Any]:
    """The audit of a prepared dataset (module docstring) as a JSON-ready dict."""
    report: dict[str, Any] = {"splits": {}, "chronology": {}, "leakage": {}, "warnings": []}
    names = [n for n in ("train", "valid", "test") if n in splits]
    lists = {n: full_lists(splits[n]) for n in names}
    for d, dom in enumerate(("x", "y")):
        pooled = ragged.concat([lists[n][d] for n in names])
        users = np.concatenate([splits[n].column("user_id") for n in names])
        result = pair_order_consistency(pooled, users)
        result["ascending_lists_share"] = ascending_share(pooled)
        report["chronology"][dom] = result
    for n in names:
        s = splits[n]
        kind = s.column("cold_start_kind")
        user_domain = s.column("user_id").astype(np.int64) * 2 + s.column("target_domain")
        content = _row_keys(s)
        report["splits"][n] = {
            "rows": len(s),
            "users": int(np.unique(s.column("user_id")).size),
            "cold_start_other_domain": int((kind == 1).sum()),
            "no_history_rows": int((kind == 2).sum()),
            "duplicate_user_domain_rows": int(len(s) - np.unique(user_domain).size),
            "duplicate_content_rows": int(len(s) - np.unique(content).size),
        }
    train_users = set(np.unique(splits["train"].column("user_id")).tolist()) if "train" in splits else set()
    if "train" in splits:
        train_items = [np.unique(lists["train"][d][1]) for d in (0, 1)]
    for n in names:
        if n == "train":
            continue
        s = splits[n]
        users = np.unique(s.column("user_id"))
        entry: dict[str, Any] = {"users_also_in_train": int(np.isin(users, list(train_users)).sum())}
        if "target_in_train" in s.table.column_names:
            entry["target_in_same_users_train_row"] = int(s.column("target_in_train").sum())
        if "train" in splits:
            domain, target = s.column("target_domain"), s.column("target_item")
            seen = np.where(
                domain == 0, np.isin(target, train_items[0]), np.isin(target, train_items[1])
            )
            entry["targets_unseen_in_train"] = int((~seen).sum())
            t = splits["train"]
            train_key = (t.column("user_id").astype(np.int64) * 2 + t.column("target_domain")) * (1 << 32) + t.column(
                "target_item"
            )
            key = (s.column("user_id").astype(np.int64) * 2 + domain) * (1 << 32) + target
            entry["same_task_as_a_train_row"] = int(np.isin(key, train_key).sum())
        report["leakage"][n] = entry
    if "valid" in splits and "test" in splits:
        report["leakage"]["users_in_valid_and_test"] = int(
            np.intersect1d(splits["valid"].column("user_id"), splits["test"].column("user_id")).size
        )
    report["warnings"] = warnings(report)
    return report


def warnings(report: Mapping[str, Any]) -> list[str]:
    """Plain-language findings that deserve a loud warning."""
    out = []
    for dom, c in report["chronology"].items():
        share = c.get("consistent_share")
        if share is not None and c["pairs"] >= 50 and share >= GLOBAL_ORDER_SHARE:
            out.append(
                f"domain {dom.upper()}: {100 * share:.1f}% of {c['pairs']} item pairs keep one relative order in "
                "every user's list: the sequences follow a fixed global item order, not time "
                "(the target is 'the item that comes last in that order'; data README caveat 1)"
            )
    for n, e in report["leakage"].items():
        if not isinstance(e, dict):
            continue
        if e.get("target_in_same_users_train_row"):
            out.append(
                f"{n}: {e['target_in_same_users_train_row']} targets are inside the same user's training row "
                "(leak across the row-level split; report results with and without them; caveat 2)"
            )
        elif e.get("users_also_in_train"):
            out.append(f"{n}: {e['users_also_in_train']} users also have training rows")
        if e.get("same_task_as_a_train_row"):
            out.append(f"{n}: {e['same_task_as_a_train_row']} rows repeat a training row's (user, domain, target)")
    for n, e in report["splits"].items():
        if e["no_history_rows"]:
            out.append(
                f"{n}: {e['no_history_rows']} rows have no history at all (cold-start kind 2, "
                "reported apart from the {0} true cold-start rows)".format(e["cold_start_other_domain"])
            )
        if e["duplicate_user_domain_rows"]:
            out.append(f"{n}: {e['duplicate_user_domain_rows']} repeated (user, target domain) rows")
    return out


def format_report(report: Mapping[str, Any]) -> str:
    """The audit as text."""
    lines = ["chronology (item pairs in >= 2 users' lists whose order never changes; ~50% = time order)"]
    for dom, c in report["chronology"].items():
        share = c.get("consistent_share")
        asc = c.get("ascending_lists_share")
        lines.append(
            f"  {dom.upper()}: {c['pairs']:>8,d} pairs, consistent "
            f"{'n/a' if share is None else f'{100 * share:5.1f}%'}, lists ascending in id "
            f"{'n/a' if asc is None else f'{100 * asc:5.1f}%'}"
        )
    lines.append("splits          rows    users  cold-start(other)  no-history  dup(user,dom)  dup(content)")
    for n, e in report["splits"].items():
        lines.append(
            f"  {n:<8} {e['rows']:>9,d} {e['users']:>8,d} {e['cold_start_other_domain']:>18,d} "
            f"{e['no_history_rows']:>11,d} {e['duplicate_user_domain_rows']:>14,d} {e['duplicate_content_rows']:>13,d}"
        )
    lines.append("leakage")
    for n, e in report["leakage"].items():
        if isinstance(e, dict):
            lines.append("  " + n + ": " + ", ".join(f"{k.replace('_', ' ')} {v:,}" for k, v in e.items()))
        else:
            lines.append(f"  {n.replace('_', ' ')}: {e:,}")
    if report["warnings"]:
        lines.append("WARNINGS")
        lines.extend(f"  ! {w}" for w in report["warnings"])
    else:
        lines.append("no warnings")
    return "\n".join(lines)
