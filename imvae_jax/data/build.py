"""From per-user sequences to train/valid/test splits: the paper's protocol and the shared pieces.

Protocol (paper section 4.1, for raw ratings and the synthetic generator), in order:

1. density ``D_s``: keep each interaction with probability ``D_s`` (seeded);
2. a (user, domain) row exists when the user has ``min_sequence_len`` (2) items in that domain;
3. users are split 80/10/10 **by user**, stratified by kind (X only, Y only, both), so every
   domain gets 80/10/10 and no user is in two splits (the authors' row-level cut leaks test targets
   into training rows, caveat 2 of the data README);
4. leave-one-out: the last item of the target domain is the target, the earlier ones (without
   copies of the target) the history; the other domain's whole sequence is the auxiliary input
   (``other_domain_before_target`` keeps only its items up to the target's time);
5. overlap ratio ``K_o``: only a share ``K_o`` of the overlapping training users is kept
   (the others' training rows are dropped);
6. cold-start ratio ``K_cs``: ``int(K_cs * n)`` of the ``n`` overlapping valid/test rows lose their
   target-domain history (the authors' ``select_overlap_user_csu``);
7. the tail threshold of each split and domain by the authors' rule (:func:`tail_threshold`);
8. 999 seeded negatives per valid/test row (:mod:`imvae_jax.data.candidates`).

Every random choice comes from ``numpy.random.default_rng([seed, STREAM])`` with one stream per
purpose, so one seed fixes the whole dataset.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Sequence

import numpy as np
import pyarrow as pa

from imvae_jax.data import ragged
from imvae_jax.data.config import DataConfig
from imvae_jax.data.ragged import Ragged
from imvae_jax.data.schema import DatasetError, Split, lists_to_arrow, make_split

# random streams, one per purpose
STREAM_SPLIT, STREAM_OVERLAP, STREAM_COLD, STREAM_DENSITY, STREAM_NEGATIVES, STREAM_VALID = 1, 2, 3, 4, 5, 6
STREAM_SYNTHETIC = 7


def rng_for(seed: int, stream: int) -> np.random.Generator:
    """The generator of one purpose (``STREAM_*``) under one seed."""
    return np.random.default_rng([int(seed), int(stream)])


# ---------------------------------------------------------------------------------------------
# tail threshold


def tail_threshold(lengths: np.ndarray) -> int:
    """The authors' tailed-length threshold over list lengths (target included).

    Over lengths > 2, drop the longest ``floor(0.2 * n)`` and take ``floor(mean)`` of the rest
    (``dataset.py:336-342``); a row is tailed when its target-domain length is ``<=`` this (the
    paper says "<"; we follow the code). When no list is longer than 2 (the authors' code would
    fail on the empty mean) it is 2: every list is short, so every row is tailed.
    """
    kept = np.sort(np.asarray(lengths, np.int64)[np.asarray(lengths) > 2])[::-1]
    if kept.size == 0:
        return 2
    kept = kept[int(np.floor(0.2 * kept.size)) :]
    return int(np.floor(kept.mean()))


# ---------------------------------------------------------------------------------------------
# Rows: prediction rows before they become a Split


@dataclasses.dataclass(frozen=True)
class Rows:
    """Prediction rows as numpy arrays, ``[R]`` each; ``seq_*`` are histories (no target)."""

    user: np.ndarray
    seq_x: Ragged
    seq_y: Ragged
    target_domain: np.ndarray
    target_item: np.ndarray
    overlap: np.ndarray
    pseudo_x: Ragged | None = None
    pseudo_y: Ragged | None = None

    def __len__(self) -> int:
        return len(self.user)

    def take(self, rows: np.ndarray) -> "Rows":
        rows = np.asarray(rows, np.int64)
        return Rows(
            user=self.user[rows],
            seq_x=ragged.take(self.seq_x, rows),
            seq_y=ragged.take(self.seq_y, rows),
            target_domain=self.target_domain[rows],
            target_item=self.target_item[rows],
            overlap=self.overlap[rows],
            pseudo_x=None if self.pseudo_x is None else ragged.take(self.pseudo_x, rows),
            pseudo_y=None if self.pseudo_y is None else ragged.take(self.pseudo_y, rows),
        )

    def mask(self, keep: np.ndarray) -> "Rows":
        return self.take(np.flatnonzero(keep))

    def history(self, domain: int) -> Ragged:
        return self.seq_x if domain == 0 else self.seq_y

    def target_history(self) -> Ragged:
        """Each row's target-domain history."""
        return ragged.where(self.target_domain == 0, self.seq_x, self.seq_y)

    def full_lengths(self) -> tuple[np.ndarray, np.ndarray]:
        """List lengths as the authors count them (history + target in the target domain)."""
        on_x = self.target_domain == 0
        return ragged.lengths(self.seq_x) + on_x, ragged.lengths(self.seq_y) + ~on_x

    def make_cold_start(self, rows_mask: np.ndarray) -> "Rows":
        """Empty the target-domain history of the rows in ``rows_mask`` (other domain kept)."""
        on_x = self.target_domain == 0
        return dataclasses.replace(
            self,
            seq_x=ragged.clear(self.seq_x, rows_mask & on_x),
            seq_y=ragged.clear(self.seq_y, rows_mask & ~on_x),
        )

    @staticmethod
    def concat(parts: Sequence["Rows"]) -> "Rows":
        has_pseudo = [p.pseudo_x is not None for p in parts]
        if any(has_pseudo) and not all(has_pseudo):
            raise DatasetError("cannot concatenate rows with and without pseudo-sequences")
        return Rows(
            user=np.concatenate([p.user for p in parts]),
            seq_x=ragged.concat([p.seq_x for p in parts]),
            seq_y=ragged.concat([p.seq_y for p in parts]),
            target_domain=np.concatenate([p.target_domain for p in parts]),
            target_item=np.concatenate([p.target_item for p in parts]),
            overlap=np.concatenate([p.overlap for p in parts]),
            pseudo_x=ragged.concat([p.pseudo_x for p in parts]) if all(has_pseudo) and parts else None,
            pseudo_y=ragged.concat([p.pseudo_y for p in parts]) if all(has_pseudo) and parts else None,
        )


def rows_from_lists(
    user: np.ndarray, list_x: Ragged, list_y: Ragged, target_domain: np.ndarray, **pseudo: Ragged | None
) -> Rows:
    """Rows from the authors' kind of lists: the target is the last item of the target-domain list.

    The history drops that last item and every earlier copy of it (``dataset.py:394-400``);
    ``overlap`` = both lists non-empty (before any cold-start cut). Target-domain lists must be
    non-empty (the caller checks and names the file).
    """
    target_domain = np.asarray(target_domain, np.int8)
    on_x = target_domain == 0
    target_list_len = np.where(on_x, ragged.lengths(list_x), ragged.lengths(list_y))
    if (target_list_len == 0).any():
        raise DatasetError(f"row {int(np.flatnonzero(target_list_len == 0)[0])}: empty target-domain list")
    offsets_x, values_x = list_x
    offsets_y, values_y = list_y
    target = np.where(
        on_x,
        values_x[np.maximum(offsets_x[1:] - 1, 0)] if len(values_x) else 0,
        values_y[np.maximum(offsets_y[1:] - 1, 0)] if len(values_y) else 0,
    ).astype(np.int32)
    seqs = []
    for d, lst in ((0, list_x), (1, list_y)):
        rows = ragged.row_ids(lst)
        is_target_domain = target_domain[rows] == d
        keep = ~(is_target_domain & (lst[1] == target[rows]))
        seqs.append(ragged.compress(lst, keep))
    overlap = (ragged.lengths(list_x) > 0) & (ragged.lengths(list_y) > 0)
    return Rows(
        user=np.asarray(user, np.int64),
        seq_x=seqs[0],
        seq_y=seqs[1],
        target_domain=target_domain,
        target_item=target,
        overlap=overlap,
        pseudo_x=pseudo.get("pseudo_x"),
        pseudo_y=pseudo.get("pseudo_y"),
    )


def target_in_train(rows: Rows, train: Rows, n_items: tuple[int, int]) -> np.ndarray:
    """``[R]`` whether the same user has a training row whose same-domain list holds the target.

    A training row's list in domain d is its history in d plus its target when it targets d.
    """
    width = max(n_items) + 1
    keys = []
    for d, seq in ((0, train.seq_x), (1, train.seq_y)):
        user = train.user[ragged.row_ids(seq)]
        keys.append((user * 2 + d) * width + seq[1])
    keys.append((train.user * 2 + train.target_domain) * width + train.target_item)
    keys = np.unique(np.concatenate(keys).astype(np.int64))
    query = (rows.user.astype(np.int64) * 2 + rows.target_domain) * width + rows.target_item
    if keys.size == 0:
        return np.zeros(len(rows), bool)
    pos = np.minimum(np.searchsorted(keys, query), keys.size - 1)
    return keys[pos] == query


def to_split(
    rows: Rows,
    name: str,
    meta: dict[str, Any],
    in_train: np.ndarray | None = None,
) -> Split:
    """A contract Split from rows; computes the cold-start flags and the split's tail thresholds."""
    len_x, len_y = ragged.lengths(rows.seq_x), ragged.lengths(rows.seq_y)
    on_x = rows.target_domain == 0
    target_hist = np.where(on_x, len_x, len_y)
    other = np.where(on_x, len_y, len_x)
    cold = target_hist == 0
    kind = np.where(~cold, 0, np.where(other > 0, 1, 2)).astype(np.int8)
    full_x, full_y = rows.full_lengths()
    thr_x, thr_y = tail_threshold(full_x), tail_threshold(full_y)
    tailed = np.where(on_x, full_x <= thr_x, full_y <= thr_y)
    columns: dict[str, pa.Array] = {
        "user_id": pa.array(rows.user.astype(np.int64)),
        "seq_x": lists_to_arrow(*rows.seq_x),
        "seq_y": lists_to_arrow(*rows.seq_y),
        "target_domain": pa.array(rows.target_domain.astype(np.int8)),
        "target_item": pa.array(rows.target_item.astype(np.int32)),
        "overlap": pa.array(rows.overlap.astype(bool)),
        "cold_start": pa.array(cold),
        "cold_start_kind": pa.array(kind),
        "tailed": pa.array(tailed.astype(bool)),
    }
    if in_train is not None:
        columns["target_in_train"] = pa.array(np.asarray(in_train, bool))
    if rows.pseudo_x is not None:
        columns["pseudo_x"] = lists_to_arrow(*rows.pseudo_x)
        columns["pseudo_y"] = lists_to_arrow(*rows.pseudo_y)
    meta = {**meta, "tail_threshold_x": thr_x, "tail_threshold_y": thr_y}
    return make_split(pa.table(columns), meta, name)


def flag_counts(split: Split) -> dict[str, int]:
    """How many rows each flag covers (for reports)."""
    t = split.table
    counts = {
        "rows": t.num_rows,
        "users": int(np.unique(split.column("user_id")).size),
        "targets_x": int((split.column("target_domain") == 0).sum()),
        "targets_y": int((split.column("target_domain") == 1).sum()),
        "overlap": int(split.column("overlap").sum()),
        "cold_start": int(split.column("cold_start").sum()),
        "cold_start_other_domain": int((split.column("cold_start_kind") == 1).sum()),
        "cold_start_no_history": int((split.column("cold_start_kind") == 2).sum()),
        "tailed": int(split.column("tailed").sum()),
    }
    if "target_in_train" in t.column_names:
        counts["target_in_train"] = int(split.column("target_in_train").sum())
    return counts


# ---------------------------------------------------------------------------------------------
# per-user sequences -> the paper's protocol


@dataclasses.dataclass(frozen=True)
class Sequences:
    """Per-user item sequences in both domains, oldest first (contiguous ids ``1..n_items``).

    ``x``, ``y``: ragged ``[U]``; ``times_x``/``times_y``: ``[N]`` aligned with the values, or None.
    ``item_ids_*``: the source id of each contiguous id, index 0 = None. ``user_ids``: ``[U]``.
    """

    user_ids: list
    item_ids_x: list
    item_ids_y: list
    x: Ragged
    y: Ragged
    times_x: np.ndarray | None = None
    times_y: np.ndarray | None = None

    @property
    def n_items(self) -> tuple[int, int]:
        return len(self.item_ids_x) - 1, len(self.item_ids_y) - 1


def downsample(seqs: Sequences, density: float, rng: np.random.Generator) -> Sequences:
    """Keep each interaction with probability ``density`` (D_s), order preserved."""
    if density >= 1.0:
        return seqs
    if not 0.0 < density <= 1.0:
        raise DatasetError(f"density D_s must be in (0, 1], got {density}")
    out = {}
    for dom in ("x", "y"):
        lst = getattr(seqs, dom)
        keep = rng.random(len(lst[1])) < density
        out[dom] = ragged.compress(lst, keep)
        times = getattr(seqs, f"times_{dom}")
        out[f"times_{dom}"] = None if times is None else times[keep]
    return dataclasses.replace(seqs, **out)


def assign_users(kind: np.ndarray, fractions: Sequence[float], rng: np.random.Generator) -> np.ndarray:
    """``[U]`` split index (0 train, 1 valid, 2 test) per user, stratified by ``kind``.

    In each stratum of n users the first ``round(f0 * n)`` of a seeded permutation go to train, the
    next ``round((f0 + f1) * n) - round(f0 * n)`` to valid, the rest to test.
    """
    fractions = np.asarray(fractions, float)
    if fractions.shape != (3,) or (fractions < 0).any() or abs(fractions.sum() - 1.0) > 1e-6:
        raise DatasetError(f"split fractions must be three non-negative numbers summing to 1, got {fractions}")
    out = np.zeros(len(kind), np.int8)
    for k in np.unique(kind):
        members = np.flatnonzero(kind == k)
        members = members[rng.permutation(members.size)]
        n = members.size
        cut1, cut2 = int(round(fractions[0] * n)), int(round((fractions[0] + fractions[1]) * n))
        out[members[cut1:cut2]] = 1
        out[members[cut2:]] = 2
    return out


def _other_before_target(seqs: Sequences, user: np.ndarray, domain: int, target_time: np.ndarray) -> Ragged:
    """The other domain's list of each row cut to items no later than the row's target time."""
    other = "y" if domain == 0 else "x"
    lst = ragged.take(getattr(seqs, other), user)
    times_all = getattr(seqs, f"times_{other}")
    times = ragged.take((getattr(seqs, other)[0], times_all), user)[1]
    keep = times <= target_time[ragged.row_ids(lst)]
    return ragged.compress(lst, keep)


def protocol_rows(seqs: Sequences, users: np.ndarray, cfg: DataConfig) -> Rows:
    """The (user, domain) rows of ``users``: one per domain with at least ``min_sequence_len`` items."""
    parts = []
    len_x, len_y = ragged.lengths(seqs.x), ragged.lengths(seqs.y)
    for d, (own_len, own, other) in enumerate(((len_x, seqs.x, seqs.y), (len_y, seqs.y, seqs.x))):
        members = users[own_len[users] >= cfg.min_sequence_len]
        list_own = ragged.take(own, members)
        if cfg.other_domain_before_target and seqs.times_x is not None and seqs.times_y is not None:
            own_times = ragged.take((own[0], seqs.times_x if d == 0 else seqs.times_y), members)[1]
            target_time = own_times[list_own[0][1:] - 1]
            list_other = _other_before_target(seqs, members, d, target_time)
        else:
            list_other = ragged.take(other, members)
        list_x, list_y = (list_own, list_other) if d == 0 else (list_other, list_own)
        rows = rows_from_lists(members, list_x, list_y, np.full(members.size, d, np.int8))
        # overlap means "history in both domains in the source", whatever the time cut did
        rows = dataclasses.replace(rows, overlap=(len_x[members] > 0) & (len_y[members] > 0))
        parts.append(rows)
    merged = Rows.concat(parts)
    order = np.lexsort((merged.target_domain, merged.user))
    return merged.take(order)


def build_protocol(
    seqs: Sequences,
    cfg: DataConfig,
    source: dict[str, Any],
    progress: Callable[[str], None] | None = None,
) -> dict[str, Split]:
    """The paper's protocol (module docstring) on per-user sequences -> ``{train, valid, test}``."""
    step = progress or (lambda _name: None)
    step("density")
    seqs = downsample(seqs, cfg.density, rng_for(cfg.seed, STREAM_DENSITY))
    len_x, len_y = ragged.lengths(seqs.x), ragged.lengths(seqs.y)
    has_x, has_y = len_x >= cfg.min_sequence_len, len_y >= cfg.min_sequence_len
    kind = np.where(has_x & has_y, 2, np.where(has_x, 0, np.where(has_y, 1, -1)))
    users = np.flatnonzero(kind >= 0)
    if users.size == 0:
        raise DatasetError(f"{source}: no user has {cfg.min_sequence_len} items in a domain")
    step("split users")
    assignment = np.full(len(kind), -1, np.int8)
    assignment[users] = assign_users(kind[users], cfg.split, rng_for(cfg.seed, STREAM_SPLIT))
    all_rows = protocol_rows(seqs, users, cfg)
    split_of_row = assignment[all_rows.user]
    rows = {name: all_rows.mask(split_of_row == i) for i, name in enumerate(("train", "valid", "test"))}

    step("overlap ratio")
    train = rows["train"]
    if cfg.overlap_ratio < 1.0:
        overlapping = np.unique(train.user[train.overlap])
        rng = rng_for(cfg.seed, STREAM_OVERLAP)
        kept = rng.choice(overlapping, size=int(round(cfg.overlap_ratio * overlapping.size)), replace=False)
        drop = np.isin(train.user, overlapping) & ~np.isin(train.user, kept)
        train = train.mask(~drop)
    rows["train"] = train

    step("cold start")
    rng = rng_for(cfg.seed, STREAM_COLD)
    for name in ("valid", "test"):
        r = rows[name]
        candidates = np.flatnonzero(r.overlap)
        chosen = rng.choice(candidates, size=int(cfg.cold_start_ratio * candidates.size), replace=False)
        mask = np.zeros(len(r), bool)
        mask[chosen] = True
        rows[name] = r.make_cold_start(mask)

    meta = base_meta(seqs.user_ids, seqs.item_ids_x, seqs.item_ids_y, cfg, source)
    splits = finish(rows, meta, seqs.n_items, cfg, step)
    return splits


def base_meta(user_ids: list, item_ids_x: list, item_ids_y: list, cfg: DataConfig, source: dict) -> dict:
    """Metadata shared by the three splits (before the per-split fields)."""
    return {
        "n_items_x": len(item_ids_x) - 1,
        "n_items_y": len(item_ids_y) - 1,
        "item_ids_x": list(item_ids_x),
        "item_ids_y": list(item_ids_y),
        "user_ids": list(user_ids),
        "build": {k: v for k, v in dataclasses.asdict(cfg).items()},
        "source": source,
        "pseudo": None,
    }


def finish(
    rows: dict[str, Rows],
    meta: dict,
    n_items: tuple[int, int],
    cfg: DataConfig,
    step: Callable[[str], None],
) -> dict[str, Split]:
    """Rows -> Splits: ``target_in_train`` and seeded negatives on valid/test, counts in ``build``."""
    from imvae_jax.data.candidates import add_negatives

    pseudo_meta = {"mode": "source", "source": meta.get("source", {}).get("kind")}  # e.g. the authors' corr_*
    splits = {}
    for name in ("train", "valid", "test"):
        r = rows[name]
        in_train = None if name == "train" else target_in_train(r, rows["train"], n_items)
        split = to_split(r, name, {**meta, "pseudo": pseudo_meta if r.pseudo_x is not None else None}, in_train)
        if name != "train" and cfg.num_eval_negatives > 0:
            step(f"negatives {name}")
            split = add_negatives(split, cfg.seed, cfg.num_eval_negatives)
        splits[name] = split
    counts = {name: flag_counts(s) for name, s in splits.items()}
    return {
        name: s.with_columns({}, {"build": {**s.meta["build"], "counts": counts}}) for name, s in splits.items()
    }
