"""Model-free scorers and the authors' candidate pool, for like-for-like comparisons.

Scorers take a batch dict in the data layer's layout (``seq_x``, ``seq_y`` ``[B, T]``
left-padded, most recent last; ``target_domain`` ``[B]``; ``candidates`` ``[B, C]``) and return
float32 scores ``[B, C]`` to be ranked by :func:`imvae_jax.eval.metrics.target_ranks`.

* :class:`Popularity`: how often each item occurs in the training lists of its domain
  (``Popularity.fit(train)``), or only as a training row's target
  (``Popularity.fit(train, targets_only=True)``: "target popularity"; on the authors' files,
  where a list's last item is its target, the items that end lists are not the items that
  fill them, and this model-free scorer reaches the paper's IM-VAE numbers on Cloth-Sport).
* :class:`ItemOrder`: "next in the file's item order" (``data/README.md`` caveat 1). The
  authors' Amazon lists follow one fixed global item order per domain (the raw file's
  product order), not time, so the target is usually the item that comes next after the
  last history item in that order. The order is either the id order (``order="id"``: exact
  for the offset layout, e.g. Game-Video, whose lists ascend in id) or learned from the
  training lists (``order="learned"``: a topological sort of the "a comes before b" pairs of
  consecutive list items, ties broken by each item's mean relative position in its lists;
  works for the mixed layout, e.g. Cloth-Sport, where ids are random). Candidates are
  scored lexicographically: (1) items known to come after the last history item, nearest
  first; (2) items of unknown position; (3) items known to come before it; popularity breaks
  the remaining ties. Rows without target-domain history (cold-start) and rows whose last
  item has no known position fall back to popularity.

:func:`authors_candidates` draws the authors' evaluation pool: negatives uniform without
replacement from the ids seen in the target domain's column *of the evaluated file*,
excluding the row's target-domain list (history and target); here seeded.

Measure: ``python -m imvae_jax.eval.baselines --train TRAIN.csv.gz --test TEST.csv.gz``.
"""

from __future__ import annotations

import argparse
import dataclasses
import heapq
import json
import sys
from collections.abc import Mapping, Sequence
from typing import Literal

import numpy as np

from imvae_jax.eval.rows import EvalRows


def _lookup(table: np.ndarray, ids: np.ndarray, fill: float) -> np.ndarray:
    """``table[ids]`` with ``fill`` for ids outside the table."""
    inside = (ids >= 0) & (ids < table.shape[0])
    return np.where(inside, table[np.clip(ids, 0, table.shape[0] - 1)], fill)


def _per_target_domain(batch: Mapping[str, np.ndarray], tables: tuple[np.ndarray, np.ndarray], fill: float) -> np.ndarray:
    """``tables[target_domain[b]][candidates[b, j]]`` as float64 ``[B, C]``."""
    candidates = np.asarray(batch["candidates"])
    domain = np.asarray(batch["target_domain"])[:, None]
    return np.where(domain == 0, _lookup(tables[0], candidates, fill), _lookup(tables[1], candidates, fill))


def _last_history_item(batch: Mapping[str, np.ndarray]) -> np.ndarray:
    """Most recent target-domain history id per row (0 when there is none), ``[B]``."""
    domain = np.asarray(batch["target_domain"])
    return np.where(domain == 0, np.asarray(batch["seq_x"])[:, -1], np.asarray(batch["seq_y"])[:, -1])


@dataclasses.dataclass(frozen=True)
class Popularity:
    """counts[d][i]: occurrences of id i in domain d's training lists (histories + targets),
    or, with ``targets_only``, as the target of a training row of domain d."""

    counts: tuple[np.ndarray, np.ndarray]

    @classmethod
    def fit(cls, train: EvalRows, targets_only: bool = False) -> Popularity:
        counts = []
        for domain in (0, 1):
            targets = train.target_item[train.target_domain == domain]
            items = targets if targets_only else np.concatenate([train.history_values[domain], targets])
            counts.append(np.bincount(items, minlength=1).astype(np.float64))
        return cls(counts=(counts[0], counts[1]))

    def score(self, batch: Mapping[str, np.ndarray]) -> np.ndarray:
        """Training count of each candidate in the row's target domain, float32 ``[B, C]``."""
        return _per_target_domain(batch, self.counts, 0.0).astype(np.float32)


def _mean_relative_positions(lists: list[np.ndarray], size: int) -> np.ndarray:
    """Each id's mean of (j+1)/(L+1) over its occurrences (index j in a list of length L); unseen: +inf.

    (j+1)/(L+1) is the expected quantile of the j-th of L uniform draws from the global
    order. Neighbour-averaging refinements of this estimate placed items closer to their
    true id order on Game-Video but lowered HR@10, so the plain mean is used.
    """
    lists = [x for x in lists if x.size]
    if not lists:
        return np.full(size, np.inf)
    lengths = np.array([x.size for x in lists])
    flat = np.concatenate(lists).astype(np.int64)
    length = np.repeat(lengths, lengths)
    index = np.arange(flat.size) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    count = np.bincount(flat, minlength=size).astype(np.float64)
    position = np.bincount(flat, weights=(index + 1) / (length + 1), minlength=size) / np.maximum(count, 1.0)
    return np.where(count > 0, position, np.inf)


def learned_order(lists: list[np.ndarray]) -> tuple[np.ndarray, int]:
    """Positions (0..n-1, NaN = never seen) of a global item order consistent with the lists.

    Builds the graph of consecutive pairs (a before b) and sorts it topologically, always
    taking next the ready item with the smallest estimated position
    (:func:`_mean_relative_positions`). If the pairs contain a cycle (a file not in one fixed
    order), the blocked item with the smallest estimate is released; the count of such
    breaks is returned.
    """
    size = 1 + max((int(x.max()) for x in lists if x.size), default=0)
    estimate = _mean_relative_positions(lists, size)
    heads = [x[:-1][x[:-1] != x[1:]] for x in lists if x.size > 1]
    tails = [x[1:][x[:-1] != x[1:]] for x in lists if x.size > 1]
    edges = np.unique(np.stack([np.concatenate(heads or [np.zeros(0)]), np.concatenate(tails or [np.zeros(0)])]).astype(np.int64), axis=1)
    successors: list[list[int]] = [[] for _ in range(size)]
    indegree = np.zeros(size, np.int64)
    for a, b in edges.T:
        successors[a].append(int(b))
        indegree[b] += 1
    nodes = np.flatnonzero(np.isfinite(estimate))
    ready = [(estimate[i], int(i)) for i in nodes if indegree[i] == 0]
    heapq.heapify(ready)
    blocked = {int(i) for i in nodes if indegree[i] > 0}
    position = np.full(size, np.nan)
    breaks, next_position = 0, 0
    while ready or blocked:
        if ready:
            item = heapq.heappop(ready)[1]
        else:  # cycle: release the blocked item that sits earliest on average
            item = min(blocked, key=lambda i: estimate[i])
            blocked.discard(item)
            breaks += 1
        if not np.isnan(position[item]):
            continue
        position[item] = next_position
        next_position += 1
        for succ in successors[item]:
            indegree[succ] -= 1
            if indegree[succ] == 0 and succ in blocked:
                blocked.discard(succ)
                heapq.heappush(ready, (estimate[succ], succ))
    return position, breaks


@dataclasses.dataclass(frozen=True)
class ItemOrder:
    """"Next in the file's item order": position[d][i] of id i in domain d's order (NaN = unknown)."""

    position: tuple[np.ndarray, np.ndarray]
    popularity: Popularity
    order: str
    cycle_breaks: int = 0

    @classmethod
    def fit(
        cls, train: EvalRows, order: Literal["learned", "id"] = "learned", context: EvalRows | None = None
    ) -> ItemOrder:
        """Learn the order from ``train``'s lists (and ``context``'s histories, targets left out)."""
        positions, breaks = [], 0
        for domain in (0, 1):
            lists = train.domain_lists(domain)
            if context is not None:
                lists += context.domain_lists(domain, with_targets=False)
            if order == "learned":
                position, b = learned_order(lists)
                breaks += b
            elif order == "id":
                size = 1 + max((int(x.max()) for x in lists if x.size), default=0)
                position = np.arange(size, dtype=np.float64)
                position[0] = np.nan
            else:
                raise ValueError(f"order must be 'learned' or 'id', got {order!r}")
            positions.append(position)
        return cls((positions[0], positions[1]), Popularity.fit(train), order, breaks)

    def score(self, batch: Mapping[str, np.ndarray]) -> np.ndarray:
        """Lexicographic (tier, -gap, popularity) as dense-rank float32 scores ``[B, C]`` (ties kept)."""
        candidate_position = _per_target_domain(batch, self.position, np.nan)  # [B, C]
        domain = np.asarray(batch["target_domain"])
        last = _last_history_item(batch)
        last_position = np.where(
            domain == 0, _lookup(self.position[0], last, np.nan), _lookup(self.position[1], last, np.nan)
        )[:, None]  # [B, 1]
        ordered = ~np.isnan(last_position)  # rows the order can speak for
        gap = candidate_position - last_position
        tier = np.where(np.isnan(candidate_position), 1.0, np.where(gap > 0, 2.0, 0.0))
        tier = np.where(ordered, tier, 0.0)
        closeness = np.where(ordered & ~np.isnan(gap), -np.abs(gap), 0.0)
        popularity = _per_target_domain(batch, self.popularity.counts, 0.0)
        span = 4.0 * max(np.nanmax(np.abs(p)) if np.isfinite(p).any() else 0.0 for p in self.position) + 4.0
        # exact in float64: |closeness| < span, popularity fraction in [0, 1)
        key = (tier * span + closeness) * span + popularity / (popularity.max() + 1.0)
        return _dense_ranks(key).astype(np.float32)


def _dense_ranks(key: np.ndarray) -> np.ndarray:
    """Dense ranks (1 = smallest, equal values share a rank) along the last axis of ``[B, C]``."""
    order = np.argsort(key, axis=1, kind="stable")
    ordered = np.take_along_axis(key, order, axis=1)
    new_value = np.concatenate([np.ones((key.shape[0], 1), bool), ordered[:, 1:] != ordered[:, :-1]], axis=1)
    ranks = np.empty(key.shape, np.int64)
    np.put_along_axis(ranks, order, np.cumsum(new_value, axis=1), axis=1)
    return ranks


def authors_candidates(
    rows: EvalRows, num_negatives: int = 999, seed: int = 0, pool_rows: Sequence[EvalRows] = ()
) -> np.ndarray:
    """The authors' candidate pool, seeded: int32 ``[R, 1 + K]``, column 0 = target.

    Negatives are uniform without replacement over the ids seen in the target domain's
    column of ``rows`` itself (every history plus that domain's targets), minus the row's
    target-domain history and target. Other-domain history items are not excluded (as in
    the authors' code). ``pool_rows`` widens the pool with the columns of other row sets
    (e.g. train + test: the whole catalogue seen in the folder).
    """
    rng = np.random.default_rng(seed)
    pools = [np.unique(np.concatenate([r.column_items(d) for r in (rows, *pool_rows)])) for d in (0, 1)]
    out = np.zeros((len(rows), 1 + num_negatives), np.int32)
    out[:, 0] = rows.target_item
    for row in range(len(rows)):
        domain = int(rows.target_domain[row])
        pool = pools[domain]
        excluded = np.append(rows.history(domain, row), rows.target_item[row])
        available = pool.size - np.isin(pool, excluded).sum()
        if available < num_negatives:
            raise ValueError(
                f"{rows.name}: row {row} has {available} eligible negatives in domain {'xy'[domain]}, "
                f"{num_negatives} requested"
            )
        draw = pool[rng.choice(pool.size, size=min(pool.size, num_negatives + excluded.size), replace=False)]
        out[row, 1:] = draw[~np.isin(draw, excluded)][:num_negatives]
    return out


# ----------------------------------------------------------------------------- measurement


def evaluate_scorers(
    train: EvalRows,
    test: EvalRows,
    num_negatives: int = 999,
    seed: int = 0,
    ks: tuple[int, ...] = (5, 10, 20),
    pool: Literal["authors", "catalogue"] = "authors",
) -> dict[str, dict]:
    """Popularity and item-order scorers on ``test``: scorer name -> result.

    pool "authors": negatives from the test file's column; "catalogue": from the ids seen in
    the domain's column of train or test.
    """
    from imvae_jax.eval.groups import aggregate, group_masks
    from imvae_jax.eval.metrics import target_ranks

    if pool not in ("authors", "catalogue"):
        raise ValueError(f"pool must be 'authors' or 'catalogue', got {pool!r}")
    candidates = authors_candidates(test, num_negatives, seed, pool_rows=(train,) if pool == "catalogue" else ())
    batch = test.as_batch(candidates)
    masks = group_masks(batch)
    scorers = {
        "popularity": Popularity.fit(train),
        "target_popularity": Popularity.fit(train, targets_only=True),
        "item_order_learned": ItemOrder.fit(train, "learned"),
        "item_order_learned_ctx": ItemOrder.fit(train, "learned", context=test),
        "item_order_id": ItemOrder.fit(train, "id"),
    }
    results = {}
    for name, scorer in scorers.items():
        ranks = np.asarray(target_ranks(scorer.score(batch)))
        results[name] = aggregate(ranks, batch["target_domain"], masks, ks)
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--train", required=True, help="authors' training CSV (.csv or .csv.gz)")
    parser.add_argument("--test", required=True, help="authors' test CSV evaluated")
    parser.add_argument("--negatives", type=int, default=999)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0], help="candidate-draw seeds (mean ± std if several)")
    parser.add_argument("--pool", choices=("authors", "catalogue"), default="authors")
    parser.add_argument("--json", action="store_true", help="print one JSON object as the last line")
    args = parser.parse_args(argv)

    from imvae_jax.eval.report import markdown_table, seed_summary, to_json
    from imvae_jax.eval.rows import read_authors_csv, with_target_in_train

    train = read_authors_csv(args.train)
    test = with_target_in_train(read_authors_csv(args.test), train)
    runs = [evaluate_scorers(train, test, args.negatives, seed, pool=args.pool) for seed in args.seeds]
    where = "the test file's column" if args.pool == "authors" else "the train+test columns"
    pool = f"{args.pool} pool: {args.negatives} uniform negatives from {where} minus the row's list, seeds {args.seeds}"
    records = {}
    for name in runs[0]:
        result = runs[0][name] if len(runs) == 1 else seed_summary([run[name] for run in runs])
        title = f"{name} on {test.name}, trained on {train.name} ({pool})"
        print(markdown_table(result, "model-free", metrics=("ndcg@10", "hr@10"), title=title))
        records[name] = to_json(result, "model-free", split=test.name, train=train.name, candidate_pool=pool)
    if args.json:
        command = " ".join(["python -m imvae_jax.eval.baselines", *(argv if argv is not None else sys.argv[1:])])
        print(json.dumps({"command": command, "scorers": records}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
